# A small image with flux-ephemeral, git and CA certificates. By default it runs the webhook
# service (`serve`); CI jobs run `flux-ephemeral <command>` in it instead.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/flux-ephemeral

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git openssh-client \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 flux-ephemeral
COPY --from=build /src/target/release/flux-ephemeral /usr/local/bin/flux-ephemeral
USER 10001
ENV FLUX_EPHEMERAL_LISTEN=0.0.0.0:8080 \
    FLUX_EPHEMERAL_STATE_DIR=/var/lib/flux-ephemeral \
    FLUX_EPHEMERAL_CACHE_DIR=/var/cache/flux-ephemeral
EXPOSE 8080
ENTRYPOINT []
CMD ["flux-ephemeral", "serve", "--log-format", "json"]
