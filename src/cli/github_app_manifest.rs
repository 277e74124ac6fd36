//! `flux-ephemeral github-app-manifest`: the GitHub App manifest for this bot.

use crate::error::{Error, Result};

/// Print a GitHub App manifest for the bot
///
/// Paste it into GitHub's "create a GitHub App from a manifest" flow (Settings → Developer settings → GitHub Apps, or an organisation's, with the manifest posted as the `manifest` form field; see docs/github-app.md). It asks for exactly the permissions the bot uses (issues, pull requests, statuses and deployments write; checks, actions and metadata read; contents write, for a GitOps repository on GitHub) and subscribes the webhook events it acts on, delivered to `<URL>/hooks/github`. GitHub then hands back the App's ID, private key and webhook secret: give them to serve as FLUX_EPHEMERAL_GITHUB_APP_ID, FLUX_EPHEMERAL_GITHUB_APP_PRIVATE_KEY_FILE and GITHUB_WEBHOOK_SECRET.
///
/// Example: flux-ephemeral github-app-manifest --url https://bot.example.com
#[derive(Debug, clap::Args)]
pub struct GitHubAppManifestCmd {
    /// Where serve is reached from GitHub, e.g. https://bot.example.com (webhooks go to /hooks/github)
    #[arg(long, value_name = "URL")]
    url: String,

    /// The App's name on GitHub (unique on GitHub)
    #[arg(long, value_name = "NAME", default_value = "flux-ephemeral")]
    name: String,

    /// Let other accounts install the App [default: only the account that owns it]
    #[arg(long)]
    public: bool,
}

impl GitHubAppManifestCmd {
    pub fn run(&self) -> Result<()> {
        let manifest = crate::service::github_app::manifest(&self.url, &self.name, self.public)?;
        let text = serde_json::to_string_pretty(&manifest)
            .map_err(|e| Error::internal(format!("manifest: {e}")))?;
        super::emit(format!("{text}\n").as_bytes())
    }
}
