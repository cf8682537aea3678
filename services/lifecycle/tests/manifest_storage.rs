//! The manifest is parsed once (docs/architecture.md, "The manifest's path"): the API shows the
//! normalised manifest stored at deploy, next to the user's YAML kept verbatim; rows from before
//! it was stored are filled in once at startup. Each test on SQLite and on Postgres.

mod common;

use common::{Backend, TestApp};
use racetrack_db::repo::fatmen;
use reqwest::StatusCode;

both_backends!(
    the_api_reads_the_stored_normalised_manifest,
    |app: TestApp| async move {
        let admin = Some(app.admin_token.as_str());
        app.seed_fatman("keeper", "1.0.0", None).await;
        let (status, before) = app.get("/api/v1/fatman/keeper/1.0.0", admin).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(before["manifest"]["name"], "keeper");
        let (_, list_before) = app.get("/api/v1/fatman", admin).await;

        // A row as written before migration 0005: the YAML only.
        let row = fatmen::find(&mut app.db(), "keeper", "1.0.0")
            .unwrap()
            .unwrap();
        let yaml = row.manifest.clone().unwrap();
        fatmen::set_manifest_json(&mut app.db(), &row.id, None).unwrap();
        let (_, without) = app.get("/api/v1/fatman/keeper/1.0.0", admin).await;
        assert!(
            without["manifest"].is_null(),
            "the API reads the normalised manifest, not the YAML: {without}"
        );

        // The startup backfill fills it in once, to the same bytes the API showed before.
        let filled = lifecycle::app::fatmen::backfill_manifest_json(&mut app.db()).unwrap();
        assert_eq!(filled, 1);
        assert_eq!(
            lifecycle::app::fatmen::backfill_manifest_json(&mut app.db()).unwrap(),
            0
        );
        let (_, after) = app.get("/api/v1/fatman/keeper/1.0.0", admin).await;
        assert_eq!(after.to_string(), before.to_string());
        let (_, list_after) = app.get("/api/v1/fatman", admin).await;
        assert_eq!(list_after.to_string(), list_before.to_string());
        // The user's YAML is untouched.
        let row = fatmen::find(&mut app.db(), "keeper", "1.0.0")
            .unwrap()
            .unwrap();
        assert_eq!(row.manifest.as_deref(), Some(yaml.as_str()));

        // A stored YAML that no longer parses stays without one, and the API answers.
        let mut broken = row.clone();
        broken.manifest = Some("name: [".into());
        fatmen::update(&mut app.db(), &broken).unwrap();
        fatmen::set_manifest_json(&mut app.db(), &row.id, None).unwrap();
        assert_eq!(
            lifecycle::app::fatmen::backfill_manifest_json(&mut app.db()).unwrap(),
            0
        );
        let (status, shown) = app.get("/api/v1/fatman/keeper/1.0.0", admin).await;
        assert_eq!(status, StatusCode::OK);
        assert!(shown["manifest"].is_null());
    }
);
