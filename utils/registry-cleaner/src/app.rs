//! One run: read Lifecycle and the registry, plan, print the plan, delete when asked.

use std::io::Write;

use chrono::TimeDelta;

use crate::cli::Args;
use crate::error::Error;
use crate::lifecycle::Lifecycle;
use crate::plan::{self, Policy, Repository, Tag};
use crate::registry::{Deleted, Registry};

/// How a run ended when it got as far as a plan.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Manifests deleted (0 in a dry run).
    pub deleted: usize,
    /// Manifests whose delete failed, with why.
    pub failures: Vec<String>,
}

impl Outcome {
    pub fn exit_code(&self) -> i32 {
        if self.failures.is_empty() {
            0
        } else {
            3
        }
    }
}

/// Runs once; the plan and progress go to `out`, failed deletions also to `err`.
pub async fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome, Error> {
    let namespace = args.namespace();
    let lifecycle = Lifecycle::new(&args.lifecycle_url, args.token()?, args.timeout())?;
    let registry = Registry::new(&args.registry_url, args.registry_auth()?, args.timeout())?;

    // Lifecycle first: without the complete list of fatmen there is nothing safe to do.
    let fatmen = lifecycle.fatmen().await?;
    registry.check().await?;
    let mut repositories = Vec::new();
    let mut other = 0usize;
    for name in registry.repositories().await? {
        if plan::fatman_of_repository(&name, &namespace).is_none() {
            other += 1;
            continue;
        }
        let mut tags = Vec::new();
        for tag in registry.tags(&name).await? {
            if let Some(digest) = registry.digest(&name, &tag).await? {
                tags.push(Tag { name: tag, digest });
            }
        }
        repositories.push(Repository { name, tags });
    }

    let policy = Policy {
        namespace,
        keep: args.keep,
        min_age: TimeDelta::minutes(i64::from(args.min_age_minutes)),
        now: chrono::Utc::now().naive_utc(),
    };
    let mut plan = plan::plan(&repositories, &fatmen, &policy);
    plan.other_repositories += other;

    let write = Error::Output;
    let verb = if args.delete {
        "delete"
    } else {
        "would delete"
    };
    if !args.delete {
        writeln!(out, "dry run: nothing is deleted without --delete").map_err(write)?;
    }
    for d in plan.deletions() {
        writeln!(
            out,
            "{verb}  {}:{}  {}  {}",
            d.repository, d.tag, d.digest, d.decision
        )
        .map_err(write)?;
    }
    if args.verbose {
        for d in plan.kept() {
            writeln!(
                out,
                "keep  {}:{}  {}  {}",
                d.repository, d.tag, d.digest, d.decision
            )
            .map_err(write)?;
        }
    }
    let manifests = plan.manifests_to_delete();
    let tags_total = plan.decisions.len();
    let to_delete = plan.deletions().count();
    writeln!(
        out,
        "{} fatman versions in Lifecycle; {} fatman image repositories ({} other repositories left \
         alone) with {tags_total} tags: {to_delete} tags ({} manifests) {}, {} kept",
        fatmen.len(),
        plan.fatman_repositories,
        plan.other_repositories,
        manifests.len(),
        if args.delete {
            "to delete"
        } else {
            "would be deleted"
        },
        tags_total - to_delete,
    )
    .map_err(write)?;

    let mut outcome = Outcome::default();
    if !args.delete {
        return Ok(outcome);
    }
    for m in manifests {
        let tags = m.tags.join(", ");
        match registry.delete_manifest(&m.repository, &m.digest).await {
            Ok(Deleted::Now) => {
                outcome.deleted += 1;
                writeln!(out, "deleted  {} {}  ({tags})", m.repository, m.digest).map_err(write)?;
            }
            Ok(Deleted::AlreadyGone) => {
                writeln!(out, "already gone  {} {}  ({tags})", m.repository, m.digest)
                    .map_err(write)?;
            }
            // Nothing else can be deleted either.
            Err(e @ Error::DeleteDisabled { .. }) => return Err(e),
            Err(e) => {
                let line = format!(
                    "could not delete {} {} ({tags}): {e}",
                    m.repository, m.digest
                );
                writeln!(err, "{line}").map_err(write)?;
                outcome.failures.push(line);
            }
        }
    }
    writeln!(
        out,
        "{} manifests deleted, {} failed (the registry frees their blobs when it garbage-collects)",
        outcome.deleted,
        outcome.failures.len()
    )
    .map_err(write)?;
    Ok(outcome)
}
