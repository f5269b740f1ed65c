use std::process::ExitCode;

use super::db::with_store;
use super::{code, exit};
use crate::config::Config;
use crate::content::TopicInfo;

/// The topics subscribers choose from
///
/// They are stored with the subscribers, seeded with the four of the sign-up box. The topics
/// in lscp-mail.toml are those an issue's sections can be tagged with: keep the two lists the
/// same (`topics list` says where they differ).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  lscp-mail topics list\n  \
lscp-mail topics add neglect --name \"Neglect strategy\" --description \"Updates on the neglect strategy\"\n\n\
Exit codes: 0 done, 1 a bad or existing slug, 2 bad usage, 3 other failure.")]
pub struct Args {
    #[command(subcommand)]
    pub command: TopicsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TopicsCommand {
    /// List the topics in sign-up order, with how many active subscribers chose each
    #[command(after_help = "Example:\n  lscp-mail topics list\n\n\
Also notes where the stored topics differ from those in lscp-mail.toml.")]
    List,
    /// Add a topic subscribers can choose
    #[command(after_help = "Examples:\n  \
lscp-mail topics add neglect --name \"Neglect strategy\" --description \"Its updates\"\n  \
lscp-mail topics add webinars --name Webinars --position 15\n\n\
Add it to [[topics]] in lscp-mail.toml too, so that sections can be tagged with it.\n\
Exit codes: 0 added, 1 a bad or existing slug, 2 bad usage, 3 other failure.")]
    Add {
        /// Lower-case letters, digits and `-`, such as `neglect`
        slug: String,
        /// As the sign-up box and the preferences page show it
        #[arg(long)]
        name: String,
        /// A line under the name on the sign-up and preferences pages [default: none]
        #[arg(long, default_value = "", hide_default_value = true)]
        description: String,
        /// Where it sorts (the built-in topics are 10, 20, 30, 40) [default: last]
        #[arg(long, value_name = "N")]
        position: Option<i32>,
    },
}

impl Args {
    pub fn run(self, config: &Config) -> anyhow::Result<ExitCode> {
        match self.command {
            TopicsCommand::List => with_store(config, async |store| {
                let topics = store.topics().await?;
                let width = topics.iter().map(|t| t.info.slug.len()).max().unwrap_or(4);
                outln!("{:width$}  {:>6}  NAME", "SLUG", "ACTIVE")?;
                for t in &topics {
                    outln!(
                        "{:width$}  {:>6}  {}",
                        t.info.slug,
                        t.active_subscribers,
                        t.info.name
                    )?;
                }
                let configured = config.topic_catalog()?;
                for t in &topics {
                    if configured.parse(&t.info.slug).is_err() {
                        outln!(
                            "note: `{}` is not among the topics in lscp-mail.toml, so no issue \
                             section can be tagged with it",
                            t.info.slug
                        )?;
                    }
                }
                for slug in configured.slugs() {
                    if !topics.iter().any(|t| t.info.slug == slug) {
                        outln!(
                            "note: `{slug}` is in lscp-mail.toml but not stored: \
                             `lscp-mail topics add {slug} --name …` lets subscribers choose it"
                        )?;
                    }
                }
                Ok(code(exit::OK))
            }),
            TopicsCommand::Add {
                slug,
                name,
                description,
                position,
            } => with_store(config, async |store| {
                let topic = TopicInfo {
                    slug,
                    name,
                    description,
                };
                store.add_topic(&topic, position).await?;
                outln!("added topic `{}` ({})", topic.slug, topic.name)?;
                Ok(code(exit::OK))
            }),
        }
    }
}
