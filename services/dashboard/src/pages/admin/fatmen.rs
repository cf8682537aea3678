//! Fatmen seen from the administration: the manifest editor, deployments (with build logs) and
//! lost or orphaned fatmen.

use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use racetrack_model::FatmanStatus;
use racetrack_proto::dashboard::{
    Deployment, DeploymentQuery, Empty, Fatman, FatmanRef, UpdateManifestRequest,
};
use serde::Deserialize;
use tonic::Code;

use super::{admin_page, alerts_with, require_staff, seg, staff_form};
use crate::error::PageError;
use crate::layout::{csrf_field, see_other, Alert};
use crate::pages::portfolio::fatman_url;
use crate::session::{self, SignedIn};
use crate::State;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/administration/fatmen/{name}/{version}/manifest",
        web::get().to(manifest_form),
    )
    .route(
        "/administration/fatmen/{name}/{version}/manifest",
        web::post().to(save_manifest),
    )
    .route("/administration/deployments", web::get().to(deployments))
    .route("/administration/lost", web::get().to(lost))
    .route(
        "/administration/lost/{name}/{version}/reprovision",
        web::post().to(reprovision),
    );
}

fn manifest_url(name: &str, version: &str) -> String {
    format!(
        "/dashboard/administration/fatmen/{}/{}/manifest",
        seg(name),
        seg(version)
    )
}

/// The administration index's list of fatmen, each with its manifest editor.
pub fn fatmen_table(fatmen: &[Fatman]) -> Markup {
    let mut sorted: Vec<&Fatman> = fatmen.iter().collect();
    sorted.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    html! {
        table #admin-fatmen {
            thead { tr { th { "Name" } th { "Version" } th { "Status" } th { "Deployed by" } th { "Updated" } th {} } }
            tbody {
                @for f in sorted {
                    tr.fatman-row data-name=(f.name) data-version=(f.version) {
                        td { (f.name) }
                        td { (f.version) }
                        td { span.badge.other { (f.status) } }
                        td { (f.deployed_by) }
                        td { (f.update_time) }
                        td {
                            a.edit-manifest href=(manifest_url(&f.name, &f.version)) { "Edit manifest" }
                            " · "
                            a href=(format!("/dashboard/administration/deployments?fatman_name={}&fatman_version={}", seg(&f.name), seg(&f.version))) { "Deployments" }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ManifestForm {
    #[serde(default)]
    manifest_yaml: String,
    csrf_token: Option<String>,
}

/// How the editor looks after a save attempt.
enum Outcome {
    None,
    Saved,
}

fn manifest_page(
    state: &State,
    user: &SignedIn,
    name: &str,
    version: &str,
    yaml: &str,
    outcome: Outcome,
    alerts: Vec<Alert>,
) -> HttpResponse {
    let alerts = alerts_with(user, alerts);
    let csrf = user.csrf();
    let body = html! {
        section.card {
            h1 { "Manifest of " (name) " " (version) }
            p.muted { "Saved manifests are checked like a deployment's. The change takes effect after a redeploy; the next regular deployment overwrites it." }
            form #manifest-form method="post" action=(manifest_url(name, version)) {
                (csrf_field(&csrf))
                label {
                    "Manifest (YAML)"
                    textarea #manifest-yaml name="manifest_yaml" rows="24" spellcheck="false" { (yaml) }
                }
                button #manifest-save type="submit" { "Save" }
            }
            @if let Outcome::Saved = outcome {
                p {
                    "Redeploy now to build and provision it with this manifest: "
                    button.redeploy type="button"
                        data-action-url=(fatman_url("api/redeploy-fatman", name, version))
                        data-action-name="Redeploy"
                        data-action-target=(format!("{name} {version}"))
                        data-confirm=(format!("Redeploy {name} {version} (rebuild and provision)?")) {
                        "Redeploy"
                    }
                }
            }
            p {
                a href=(format!("/dashboard/administration/deployments?fatman_name={}&fatman_version={}", seg(name), seg(version))) { "Deployments of this fatman" }
            }
        }
    };
    admin_page(state, user, "Manifest", &alerts, body)
}

async fn manifest_form(
    state: State,
    user: SignedIn,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, PageError> {
    require_staff(&user)?;
    let (name, version) = path.into_inner();
    let fatman = state
        .lifecycle
        .call(
            Some(&user.token),
            FatmanRef {
                name: name.clone(),
                version: version.clone(),
            },
            |mut c, r| async move { c.get_fatman(r).await },
        )
        .await?;
    Ok(manifest_page(
        &state,
        &user,
        &name,
        &version,
        &fatman.manifest_yaml,
        Outcome::None,
        Vec::new(),
    ))
}

async fn save_manifest(
    state: State,
    user: SignedIn,
    path: web::Path<(String, String)>,
    form: web::Form<ManifestForm>,
) -> Result<HttpResponse, PageError> {
    staff_form(&user, form.csrf_token.as_deref())?;
    let (name, version) = path.into_inner();
    let form = form.into_inner();
    let result = state
        .lifecycle
        .call(
            Some(&user.token),
            UpdateManifestRequest {
                name: name.clone(),
                version: version.clone(),
                manifest_yaml: form.manifest_yaml.clone(),
            },
            |mut c, r| async move { c.update_manifest(r).await },
        )
        .await;
    Ok(match result {
        Ok(saved) => {
            tracing::info!(admin = %user.username, fatman = %name, version = %version, "manifest updated");
            manifest_page(
                &state,
                &user,
                &name,
                &version,
                &saved.manifest_yaml,
                Outcome::Saved,
                vec![Alert::Success(format!(
                    "Manifest of {name} {version} saved. Redeploy for it to take effect."
                ))],
            )
        }
        Err(e) => {
            let text = if e.code() == Some(Code::InvalidArgument) {
                format!("The manifest is not valid: {e}")
            } else {
                e.to_string()
            };
            manifest_page(
                &state,
                &user,
                &name,
                &version,
                &form.manifest_yaml,
                Outcome::None,
                vec![Alert::Error(text)],
            )
        }
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct DeploymentsQuery {
    #[serde(default)]
    fatman_name: String,
    #[serde(default)]
    fatman_version: String,
    #[serde(default)]
    limit: Option<String>,
}

/// The gRPC query of the page's query string: blank means all; a bad or missing limit is 100.
fn deployment_query(q: &DeploymentsQuery) -> DeploymentQuery {
    let limit = q
        .limit
        .as_deref()
        .and_then(|l| l.trim().parse::<u32>().ok())
        .filter(|l| (1..=1000).contains(l))
        .unwrap_or(100);
    DeploymentQuery {
        fatman_name: q.fatman_name.trim().to_string(),
        fatman_version: q.fatman_version.trim().to_string(),
        limit,
    }
}

fn deployment_row(d: &Deployment) -> Markup {
    html! {
        tr.deployment data-deployment-id=(d.id) {
            td { code { (d.id) } }
            td { (d.fatman_name) " " (d.fatman_version) }
            td.status { span.badge.other { (d.status) } }
            td.phase { (d.phase) }
            td { (d.deployed_by) }
            td { (d.infrastructure_target) }
            td { (d.create_time) }
            td { (d.update_time) }
            td.error { @if !d.error.is_empty() { pre { (d.error) } } }
            td {
                @if !d.fatman_name.is_empty() {
                    a.build-logs href=(fatman_url("fatman/build-logs", &d.fatman_name, &d.fatman_version)) { "Build logs" }
                }
            }
        }
    }
}

async fn deployments(
    state: State,
    user: SignedIn,
    q: web::Query<DeploymentsQuery>,
) -> Result<HttpResponse, PageError> {
    require_staff(&user)?;
    let query = deployment_query(&q);
    let mut more = Vec::new();
    let list = state
        .lifecycle
        .call(Some(&user.token), query.clone(), |mut c, r| async move {
            c.list_deployments(r).await
        })
        .await
        .map(|l| l.deployments)
        .unwrap_or_else(|e| {
            more.push(Alert::Error(e.to_string()));
            Vec::new()
        });
    let alerts = alerts_with(&user, more);
    let body = html! {
        section.card {
            h1 { "Deployments" }
            form #deployments-filter method="get" action="/dashboard/administration/deployments" {
                label.inline { "Fatman " input type="text" name="fatman_name" value=(query.fatman_name); }
                label.inline { "Version " input type="text" name="fatman_version" value=(query.fatman_version); }
                label.inline { "Newest " input type="number" name="limit" min="1" max="1000" value=(query.limit); }
                button type="submit" { "Show" }
            }
            table #deployments {
                thead { tr { th { "Id" } th { "Fatman" } th { "Status" } th { "Phase" } th { "Deployed by" } th { "Target" } th { "Created" } th { "Updated" } th { "Error" } th {} } }
                tbody {
                    @for d in &list { (deployment_row(d)) }
                    @if list.is_empty() { tr { td colspan="10" { "No deployments" } } }
                }
            }
        }
    };
    Ok(admin_page(&state, &user, "Deployments", &alerts, body))
}

/// The fatmen that need attention: lost (registered, gone from the infrastructure) and
/// orphaned (running without a registry entry).
pub fn lost_or_orphaned(fatmen: &[Fatman]) -> Vec<&Fatman> {
    fatmen
        .iter()
        .filter(|f| {
            matches!(
                f.status.parse::<FatmanStatus>(),
                Ok(FatmanStatus::Lost | FatmanStatus::Orphaned)
            )
        })
        .collect()
}

fn lost_row(f: &Fatman, csrf: &str) -> Markup {
    html! {
        tr.lost-fatman data-name=(f.name) data-version=(f.version) {
            td { (f.name) }
            td { (f.version) }
            td.status { span.badge.error { (f.status) } }
            td { (f.deployed_by) }
            td { (f.update_time) }
            td { (f.infrastructure_target) }
            td {
                form.inline method="post" action=(format!("/dashboard/administration/lost/{}/{}/reprovision", seg(&f.name), seg(&f.version)))
                    data-confirm=(format!("Provision {} {} again from its existing image?", f.name, f.version)) {
                    (csrf_field(csrf))
                    button.reprovision type="submit" { "Reprovision" }
                }
                " "
                button.delete.danger type="button"
                    data-action-url=(fatman_url("api/delete-fatman", &f.name, &f.version))
                    data-action-name="Delete"
                    data-action-target=(format!("{} {}", f.name, f.version))
                    data-confirm=(format!("Delete fatman {} {}? This cannot be undone.", f.name, f.version)) {
                    "Delete"
                }
            }
        }
    }
}

async fn lost(state: State, user: SignedIn) -> Result<HttpResponse, PageError> {
    require_staff(&user)?;
    let mut more = Vec::new();
    let fatmen = state
        .lifecycle
        .call(Some(&user.token), Empty {}, |mut c, r| async move {
            c.list_fatmen(r).await
        })
        .await
        .map(|l| l.fatmen)
        .unwrap_or_else(|e| {
            more.push(Alert::Error(e.to_string()));
            Vec::new()
        });
    let shown = lost_or_orphaned(&fatmen);
    let alerts = alerts_with(&user, more);
    let csrf = user.csrf();
    let body = html! {
        section.card {
            h1 { "Lost and orphaned fatmen" }
            p.muted { "Lost: registered but missing from the infrastructure. Orphaned: running without a registry entry." }
            table #lost-fatmen {
                thead { tr { th { "Name" } th { "Version" } th { "Status" } th { "Deployed by" } th { "Updated" } th { "Target" } th { "Actions" } } }
                tbody {
                    @for f in &shown { (lost_row(f, &csrf)) }
                    @if shown.is_empty() { tr { td colspan="7" { "None: every fatman is where it should be." } } }
                }
            }
        }
    };
    Ok(admin_page(&state, &user, "Lost fatmen", &alerts, body))
}

#[derive(Debug, Default, Deserialize)]
pub struct CsrfForm {
    csrf_token: Option<String>,
}

async fn reprovision(
    state: State,
    user: SignedIn,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    staff_form(&user, form.csrf_token.as_deref())?;
    let (name, version) = path.into_inner();
    let result = state
        .lifecycle
        .call(
            Some(&user.token),
            FatmanRef {
                name: name.clone(),
                version: version.clone(),
            },
            |mut c, r| async move { c.reprovision_fatman(r).await },
        )
        .await;
    match result {
        Ok(d) => session::flash(
            &user.session,
            true,
            format!(
                "Reprovisioning {name} {version} started (deployment {})",
                d.id
            ),
        ),
        Err(e) => session::flash(
            &user.session,
            false,
            format!("Reprovisioning {name} {version}: {e}"),
        ),
    }
    Ok(see_other("/dashboard/administration/lost"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fatman(name: &str, status: FatmanStatus) -> Fatman {
        Fatman {
            name: name.into(),
            version: "1.0.0".into(),
            status: status.as_str().into(),
            ..Fatman::default()
        }
    }

    #[test]
    fn lost_and_orphaned_only() {
        let all: Vec<Fatman> = FatmanStatus::ALL
            .iter()
            .map(|s| fatman(s.as_str(), *s))
            .chain([fatman("weird", FatmanStatus::Running)].map(|mut f| {
                f.status = "unheard-of".into();
                f
            }))
            .collect();
        let names: Vec<&str> = lost_or_orphaned(&all)
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&FatmanStatus::Lost.as_str()));
        assert!(names.contains(&FatmanStatus::Orphaned.as_str()));
        let html = lost_row(&all[4], "tok").into_string();
        assert!(html.contains(r#"class="delete danger""#));
        assert!(html.contains("/reprovision"));
    }

    #[test]
    fn deployment_queries() {
        let q = |name: &str, limit: Option<&str>| DeploymentsQuery {
            fatman_name: name.into(),
            fatman_version: String::new(),
            limit: limit.map(Into::into),
        };
        assert_eq!(deployment_query(&q("", None)).limit, 100);
        assert_eq!(
            deployment_query(&q(" adder ", Some("20"))).fatman_name,
            "adder"
        );
        assert_eq!(deployment_query(&q("", Some("20"))).limit, 20);
        assert_eq!(deployment_query(&q("", Some("0"))).limit, 100);
        assert_eq!(deployment_query(&q("", Some("lots"))).limit, 100);
        let row = deployment_row(&Deployment {
            id: "d1".into(),
            fatman_name: "adder".into(),
            fatman_version: "1.0.0".into(),
            error: "boom".into(),
            ..Deployment::default()
        })
        .into_string();
        assert!(
            row.contains(r#"href="/dashboard/fatman/build-logs/adder/1.0.0""#),
            "{row}"
        );
        assert!(row.contains("<pre>boom</pre>"));
    }

    #[test]
    fn index_links_each_fatman_to_its_manifest() {
        let html = fatmen_table(&[fatman("adder", FatmanStatus::Running)]).into_string();
        assert!(html.contains(r#"href="/dashboard/administration/fatmen/adder/1.0.0/manifest""#));
    }
}
