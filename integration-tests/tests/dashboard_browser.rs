//! The dashboard walked in a real browser (headless chromium through chromium-driver) on the
//! real platform: Lifecycle, image-builder, PUB, the dashboard, Redis and Docker. One walk, in
//! the order a new user and an admin meet the platform; a screenshot and the page source are
//! saved under `target/browser-screenshots/` when a step fails.

mod harness;

use std::time::Duration;

use fantoccini::{Client, Locator};
use harness::dashboard::{chromium_ok, Browser};
use harness::*;
use serde_json::json;

type Step = Result<(), String>;

fn e<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |err| format!("{what}: {err}")
}

async fn open(c: &Client, url: &str) -> Step {
    c.goto(url).await.map_err(e(url))
}

async fn fill(c: &Client, css: &str, value: &str) -> Step {
    let el = c.find(Locator::Css(css)).await.map_err(e(css))?;
    el.clear().await.map_err(e(css))?;
    el.send_keys(value).await.map_err(e(css))
}

async fn click(c: &Client, css: &str) -> Step {
    c.find(Locator::Css(css))
        .await
        .map_err(e(css))?
        .click()
        .await
        .map_err(e(css))
}

async fn text(c: &Client, css: &str) -> Result<String, String> {
    c.find(Locator::Css(css))
        .await
        .map_err(e(css))?
        .text()
        .await
        .map_err(e(css))
}

async fn texts(c: &Client, css: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for el in c.find_all(Locator::Css(css)).await.map_err(e(css))? {
        out.push(el.text().await.map_err(e(css))?);
    }
    Ok(out)
}

async fn attrs(c: &Client, css: &str, attr: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for el in c.find_all(Locator::Css(css)).await.map_err(e(css))? {
        out.push(el.attr(attr).await.map_err(e(css))?.unwrap_or_default());
    }
    Ok(out)
}

async fn page_has(c: &Client, needle: &str) -> bool {
    c.source().await.is_ok_and(|s| s.contains(needle))
}

/// Waits for `css` to exist and its text to satisfy `ok`.
async fn wait_text(
    b: &Browser,
    css: &str,
    timeout: Duration,
    ok: impl Fn(&str) -> bool,
) -> Result<String, String> {
    let c = &b.client;
    let mut last = String::new();
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if let Ok(t) = text(c, css).await {
            if ok(&t) {
                return Ok(t);
            }
            last = t;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(format!("{css}: text still {last:?} after {timeout:?}"))
}

async fn accept_confirm(c: &Client) -> Step {
    // The confirmation is the browser's own dialog.
    for _ in 0..25 {
        if c.accept_alert().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err("no confirmation dialog appeared".into())
}

async fn sign_in(b: &Browser, dash: &str, username: &str, password: &str) -> Step {
    let c = &b.client;
    open(c, &format!("{dash}/dashboard/accounts/login")).await?;
    fill(c, "#username", username).await?;
    fill(c, "#password", password).await?;
    click(c, "#sign-in").await?;
    // A click returns before the form's navigation ends: wait for its answer (the fatmen page,
    // or the form again with an error), or the next step would race the POST.
    b.wait_for("the sign-in answer", Duration::from_secs(20), || async {
        let left = c
            .current_url()
            .await
            .is_ok_and(|u| !u.path().ends_with("/accounts/login"));
        left || c.find(Locator::Css(".alert.error")).await.is_ok()
    })
    .await
}

async fn sign_out(b: &Browser, dash: &str) -> Step {
    let c = &b.client;
    open(c, &format!("{dash}/dashboard/profile")).await?;
    click(c, "#logout").await?;
    b.wait_for("the sign-out redirect", Duration::from_secs(20), || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.path().ends_with("/accounts/login"))
    })
    .await
}

/// Portfolio rows (name@version) for filter expressions by column.
async fn portfolio(
    b: &Browser,
    dash: &str,
    filters: &[(usize, &str)],
) -> Result<Vec<String>, String> {
    let c = &b.client;
    let mut query = String::from("page_size=100");
    for (col, expr) in filters {
        query.push_str(&format!("&f{col}={}", pct(expr)));
    }
    open(c, &format!("{dash}/dashboard/portfolio?{query}")).await?;
    let names = attrs(c, "tr.portfolio-row", "data-name").await?;
    let versions = attrs(c, "tr.portfolio-row", "data-version").await?;
    let mut rows: Vec<String> = names
        .into_iter()
        .zip(versions)
        .map(|(n, v)| format!("{n}@{v}"))
        .collect();
    rows.sort();
    Ok(rows)
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_and_an_admin_walk_the_dashboard() {
    if !deploy_prerequisites() || !require("Redis on 127.0.0.1:6379", redis_ok()) {
        return;
    }
    if !require(
        "chromium and chromium-driver (Debian packages)",
        chromium_ok(),
    ) {
        return;
    }
    let mut p = Platform::start().await;
    let pub_url = p.start_pub(&[]).await;
    let dash = p.start_dashboard(&pub_url).await;

    // Three fatmen for the pages to show: two versions of one family, one of another.
    let fam_a = unique("dash-a");
    let fam_b = unique("dash-b");
    let sample = workspace_root().join("sample/python-class");
    for (name, version) in [(&fam_a, "0.0.1"), (&fam_a, "0.0.2"), (&fam_b, "1.2.0")] {
        let d = p
            .deploy(json!({"manifest": sample_manifest("python-class", name, version), "build_context": build_context(&sample)}))
            .await;
        assert_eq!(d["status"], "done", "deploy {name} {version}: {d}");
    }

    let b = Browser::start("walk").await;
    let result = walk(&b, &p, &dash, &pub_url, &fam_a, &fam_b).await;
    if let Err(err) = result {
        let shot = b.screenshot("failure").await;
        let source = b.client.source().await.unwrap_or_default();
        let _ = std::fs::write(b.shots.join("failure.html"), &source);
        panic!(
            "browser walk failed: {err}\nscreenshot: {}\npage source saved next to it",
            shot.display()
        );
    }
}

async fn walk(
    b: &Browser,
    p: &Platform,
    dash: &str,
    pub_url: &str,
    fam_a: &str,
    fam_b: &str,
) -> Step {
    let c = &b.client;
    let user = format!("{}@example.com", unique("walker"));
    let password = "Walker-Passw0rd-long";

    // 1. Register: the account waits for an admin.
    open(c, &format!("{dash}/dashboard/register")).await?;
    fill(c, "#username", &user).await?;
    fill(c, "#password1", password).await?;
    fill(c, "#password2", password).await?;
    click(c, "#register").await?;
    b.wait_for("the registered page", Duration::from_secs(10), || {
        page_has(c, "activate")
    })
    .await?;
    sign_in(b, dash, &user, password).await?;
    let refused = text(c, ".alert.error").await?;
    if !refused.contains("not active") {
        return Err(format!("inactive sign-in gave {refused:?}"));
    }

    // 2. The admin activates the account.
    sign_in(b, dash, "admin", ADMIN_PASSWORD).await?;
    open(c, &format!("{dash}/dashboard/administration/users")).await?;
    click(
        c,
        &format!("tr.user[data-username=\"{user}\"] button.activate"),
    )
    .await?;
    b.wait_for("the user to be active", Duration::from_secs(10), || async {
        c.find(Locator::Css(&format!(
            "tr.user[data-username=\"{user}\"] button.deactivate"
        )))
        .await
        .is_ok()
    })
    .await?;
    sign_out(b, dash).await?;

    // 3. The user signs in and sees the deployed fatmen.
    sign_in(b, dash, &user, password).await?;
    let fatman_a2 = format!("#fatman-{fam_a}-0\\.0\\.2");
    let status = wait_text(
        b,
        &format!("{fatman_a2} span.badge.status"),
        Duration::from_secs(10),
        |t| t == "RUNNING",
    )
    .await?;
    b.screenshot("fatmen").await;
    let _ = status;

    // 4. The fatman's docs through PUB, authenticated by the dashboard's cookie alone.
    let docs_url = format!("{pub_url}/fatman/{fam_a}/0.0.2/");
    open(c, &docs_url).await?;
    b.wait_for(
        "the fatman's docs through PUB",
        Duration::from_secs(10),
        || page_has(c, "openapi.json"),
    )
    .await?;
    let title = c.title().await.map_err(e("title"))?;
    if !title.contains(fam_a) {
        return Err(format!("docs page title {title:?} does not name {fam_a}"));
    }

    // 5. Runtime logs follow a new line.
    open(
        c,
        &format!("{dash}/dashboard/fatman/{fam_a}/0.0.2/logs/follow"),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let marker = unique("marker");
    let call = p
        .client
        .get(format!("{pub_url}/fatman/{fam_a}/0.0.2/{marker}"))
        .header("X-Racetrack-Auth", &p.admin_token)
        .send()
        .await
        .map_err(e("call through PUB"))?;
    let _ = call.status();
    wait_text(b, "pre#log-lines", Duration::from_secs(20), |t| {
        t.contains(&marker)
    })
    .await?;

    // 6. Portfolio filters: every expected row set below follows the spec's operators.
    let a1 = format!("{fam_a}@0.0.1");
    let a2 = format!("{fam_a}@0.0.2");
    let b1 = format!("{fam_b}@1.2.0");
    let mine = |rows: Vec<String>| -> Vec<String> {
        rows.into_iter()
            .filter(|r| r.starts_with(fam_a) || r.starts_with(fam_b))
            .collect()
    };
    // (filter box by column, the rows it must leave)
    type Case = (Vec<(usize, String)>, Vec<String>);
    let cases: Vec<Case> = vec![
        // `=` exact (case-insensitive), `*` contains, `!` does not contain
        (
            vec![(0, format!("={}", fam_a.to_uppercase()))],
            vec![a1.clone(), a2.clone()],
        ),
        (vec![(0, format!("*{fam_b}"))], vec![b1.clone()]),
        (
            vec![(0, format!("{fam_a}||{fam_b}")), (1, "!0.0.1".into())],
            vec![a2.clone(), b1.clone()],
        ),
        // `{` starts with, `}` ends with, `&&`
        (
            vec![(0, format!("{{{fam_a}")), (1, "}.2".into())],
            vec![a2.clone()],
        ),
        (
            vec![(0, format!("{fam_a}&&*dash")), (1, "{0.0".into())],
            vec![a1.clone(), a2.clone()],
        ),
        // `rgx:`
        (
            vec![
                (0, format!("rgx:^({fam_a}|{fam_b})$")),
                (1, "rgx:^1\\.".into()),
            ],
            vec![b1.clone()],
        ),
        // `[empty]` / `[nonempty]` on "Deployed by"
        (
            vec![(0, format!("{fam_a}||{fam_b}")), (4, "[nonempty]".into())],
            vec![a1.clone(), a2.clone(), b1.clone()],
        ),
        (
            vec![(0, format!("{fam_a}||{fam_b}")), (4, "[empty]".into())],
            vec![],
        ),
        // numbers: `<` and `>=` on "Last updated ago [days]"
        (
            vec![(0, format!("{fam_a}||{fam_b}")), (5, "<1".into())],
            vec![a1.clone(), a2.clone(), b1.clone()],
        ),
        (
            vec![(0, format!("{fam_a}||{fam_b}")), (5, ">=1".into())],
            vec![],
        ),
    ];
    for (filters, want) in cases {
        let f: Vec<(usize, &str)> = filters.iter().map(|(c, s)| (*c, s.as_str())).collect();
        let mut want = want;
        want.sort();
        let got = mine(portfolio(b, dash, &f).await?);
        if got != want {
            return Err(format!("portfolio {filters:?}: got {got:?}, want {want:?}"));
        }
    }
    b.screenshot("portfolio").await;

    // 7. Audit log filtered to one family.
    open(c, &format!("{dash}/dashboard/activity")).await?;
    fill(c, "form#audit-filter input[name=fatman_name]", fam_b).await?;
    click(c, "#audit-filter-submit").await?;
    b.wait_for("filtered audit log", Duration::from_secs(10), || async {
        c.current_url()
            .await
            .is_ok_and(|u| u.as_str().contains(fam_b))
    })
    .await?;
    let sentences = texts(c, "li.audit-event .audit-sentence").await?;
    if sentences.is_empty() || sentences.iter().any(|s| !s.contains(fam_b)) {
        return Err(format!("audit log for {fam_b}: {sentences:?}"));
    }
    sign_out(b, dash).await?;

    // 8. The admin creates an ESC (its token shown once) and lets it call family A.
    sign_in(b, dash, "admin", ADMIN_PASSWORD).await?;
    let esc_name = unique("walk-esc");
    open(c, &format!("{dash}/dashboard/administration/escs")).await?;
    fill(c, "form#create-esc input[name=name]", &esc_name).await?;
    click(c, "form#create-esc button[type=submit]").await?;
    let esc_token = wait_text(b, "code#new-esc-token", Duration::from_secs(10), |t| {
        t.len() > 20
    })
    .await?;
    open(c, &format!("{dash}/dashboard/administration/escs")).await?;
    if page_has(c, &esc_token).await {
        return Err("the ESC token is shown again after the first time".into());
    }
    let before_grant = p
        .client
        .post(format!("{pub_url}/fatman/{fam_a}/0.0.2/api/v1/perform"))
        .header("X-Racetrack-Auth", &esc_token)
        .json(&json!({"numbers": [1, 2]}))
        .send()
        .await
        .map_err(e("ESC call"))?
        .status()
        .as_u16();

    open(c, &format!("{dash}/dashboard/administration/permissions")).await?;
    let options = c
        .find_all(Locator::Css(
            "form#grant-permission select[name=auth_subject_id] option",
        ))
        .await
        .map_err(e("subject options"))?;
    let mut esc_subject = None;
    for o in options {
        if o.text().await.unwrap_or_default().contains(&esc_name) {
            esc_subject = o.attr("value").await.ok().flatten();
        }
    }
    let esc_subject = esc_subject.ok_or("the new ESC is not among the subjects")?;
    c.find(Locator::Css(
        "form#grant-permission select[name=auth_subject_id]",
    ))
    .await
    .map_err(e("subject select"))?
    .select_by_value(&esc_subject)
    .await
    .map_err(e("select subject"))?;
    c.find(Locator::Css("form#grant-permission select[name=scope]"))
        .await
        .map_err(e("scope select"))?
        .select_by_value("call_fatman")
        .await
        .map_err(e("select scope"))?;
    fill(c, "form#grant-permission input[name=fatman_family]", fam_a).await?;
    click(c, "#grant-submit").await?;
    b.wait_for("the permission row", Duration::from_secs(10), || async {
        texts(c, "tr.permission").await.is_ok_and(|rows| {
            rows.iter()
                .any(|r| r.contains(&esc_name) && r.contains(fam_a))
        })
    })
    .await?;
    let after_grant = p
        .client
        .post(format!("{pub_url}/fatman/{fam_a}/0.0.2/api/v1/perform"))
        .header("X-Racetrack-Auth", &esc_token)
        .json(&json!({"numbers": [1, 2]}))
        .send()
        .await
        .map_err(e("ESC call after grant"))?
        .status()
        .as_u16();
    if before_grant != 403 || after_grant != 200 {
        return Err(format!(
            "ESC through PUB: {before_grant} before the grant, {after_grant} after"
        ));
    }

    // 9. The graph shows the edge and filters to the ESC's neighbours on a click.
    open(c, &format!("{dash}/dashboard/graph")).await?;
    // A data block is not rendered, so WebDriver's text of it is empty: read it by script.
    let data = c
        .execute(
            "return document.getElementById('graph-data').textContent",
            vec![],
        )
        .await
        .map_err(e("graph data"))?;
    let data: serde_json::Value =
        serde_json::from_str(data.as_str().unwrap_or_default()).map_err(e("graph data json"))?;
    let esc_node = data["nodes"]
        .as_array()
        .and_then(|ns| {
            ns.iter()
                .find(|n| n["label"].as_str().is_some_and(|l| l.contains(&esc_name)))
        })
        .and_then(|n| n["id"].as_str())
        .ok_or("no node for the ESC")?
        .to_string();
    let fam_node = format!("family:{fam_a}");
    let has_edge = data["edges"].as_array().is_some_and(|es| {
        es.iter()
            .any(|e| e["from"] == esc_node.as_str() && e["to"] == fam_node.as_str())
    });
    if !has_edge {
        return Err(format!(
            "no edge {esc_node} → {fam_node} in {}",
            data["edges"]
        ));
    }
    click(
        c,
        &format!("ul#graph-nodes li[data-node-id=\"{esc_node}\"]"),
    )
    .await?;
    let visible = wait_text(b, "pre#graph-visible", Duration::from_secs(10), |t| {
        !t.contains(&format!("family:{fam_b}"))
    })
    .await?;
    let mut visible: Vec<&str> = visible.lines().collect();
    visible.sort();
    let mut want = vec![esc_node.as_str(), fam_node.as_str()];
    want.sort();
    if visible != want {
        return Err(format!(
            "after clicking the ESC the graph shows {visible:?}, want {want:?}"
        ));
    }
    b.screenshot("graph").await;

    // 10. The admin edits a manifest: invalid YAML is refused with the validator's words.
    open(
        c,
        &format!("{dash}/dashboard/administration/fatmen/{fam_a}/0.0.2/manifest"),
    )
    .await?;
    let typed = "name: [unclosed";
    fill(c, "textarea#manifest-yaml", typed).await?;
    click(c, "#manifest-save").await?;
    let refused = wait_text(b, ".alert.error", Duration::from_secs(10), |t| {
        !t.is_empty()
    })
    .await?;
    let kept = c
        .find(Locator::Css("textarea#manifest-yaml"))
        .await
        .map_err(e("textarea"))?
        .prop("value")
        .await
        .map_err(e("textarea value"))?
        .unwrap_or_default();
    if kept != typed {
        return Err(format!(
            "the refused YAML was not kept in the form: {kept:?} ({refused})"
        ));
    }
    let mut manifest = sample_manifest("python-class", fam_a, "0.0.2");
    manifest["labels"] = json!({"edited": "in-the-browser"});
    // Redeploy rebuilds from the manifest's git remote: a local repository, nothing from the net.
    let repo = local_git_repo(p, &workspace_root().join("sample/python-class"));
    manifest["git"] =
        json!({"remote": format!("file://{}", repo.display()), "branch": "main", "directory": "."});
    let valid = serde_yaml::to_string(&manifest).map_err(e("yaml"))?;
    fill(c, "textarea#manifest-yaml", &valid).await?;
    click(c, "#manifest-save").await?;
    wait_text(b, ".alert.success", Duration::from_secs(10), |t| {
        !t.is_empty()
    })
    .await?;

    // 11. Redeploy from the fatmen page: the deployment's status changes on screen, no reload.
    open(c, &format!("{dash}/dashboard/?q={fam_a}")).await?;
    c.execute("document.body.dataset.sameDocument = 'yes'", vec![])
        .await
        .map_err(e("mark document"))?;
    click(c, &format!("{fatman_a2} button.redeploy")).await?;
    accept_confirm(c).await?;
    let deployment = format!("{fatman_a2} span.deployment-status");
    wait_text(b, &deployment, Duration::from_secs(20), |t| !t.is_empty()).await?;
    let final_status = wait_text(b, &deployment, Duration::from_secs(300), |t| {
        t.contains("done") || t.contains("failed")
    })
    .await?;
    if !final_status.contains("done") {
        return Err(format!("redeploy ended {final_status:?}"));
    }
    let same = c
        .execute("return document.body.dataset.sameDocument || ''", vec![])
        .await
        .map_err(e("read mark"))?;
    if same != json!("yes") {
        return Err("the page reloaded during the redeploy".into());
    }
    b.screenshot("redeployed").await;

    // 12. A state-changing request without its CSRF token is refused, and nothing changes.
    let answer = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], {method: 'POST', credentials: 'same-origin'})
               .then(r => r.text().then(t => done([r.status, t])))
               .catch(err => done([0, String(err)]));",
            vec![json!(format!("/dashboard/api/delete-fatman/{fam_b}/1.2.0"))],
        )
        .await
        .map_err(e("post without CSRF"))?;
    if answer[0] != json!(403) || !answer[1].as_str().unwrap_or_default().contains("CSRF") {
        return Err(format!("a POST without the CSRF token answered {answer}"));
    }
    let form_post = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const body = new URLSearchParams({name: 'forged-esc'});
             fetch('/dashboard/administration/escs', {method: 'POST', body, credentials: 'same-origin'})
               .then(r => done(r.status)).catch(err => done(0));",
            vec![],
        )
        .await
        .map_err(e("form without CSRF"))?;
    if form_post != json!(403) {
        return Err(format!(
            "a form posted without its CSRF token answered {form_post}"
        ));
    }
    let (_, list) = p.call(reqwest::Method::GET, "/api/v1/fatman", None).await;
    let still = list
        .as_array()
        .is_some_and(|l| l.iter().any(|f| f["name"] == fam_b));
    if !still {
        return Err(format!(
            "{fam_b} was deleted by a request without CSRF token"
        ));
    }
    Ok(())
}
