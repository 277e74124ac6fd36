# A small image with flux-ephemeral, git and CA certificates, for CI jobs.
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
USER flux-ephemeral
ENTRYPOINT []
CMD ["flux-ephemeral", "--help"]
