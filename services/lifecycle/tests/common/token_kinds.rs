//! The thirteen kinds of token the gRPC authorization matrices present (used with
//! `#[path]` by the matrix test files).
#![allow(dead_code)]

use racetrack_model::InternalService;
use reqwest::StatusCode;
use serde_json::Value;

use super::common::TestApp;

#[derive(Clone, Copy, Debug)]
pub enum Role {
    /// No metadata at all.
    Anonymous,
    InactiveUser,
    /// Deployed `adder 1.0.0`.
    User,
    Admin,
    Esc,
    Fatman,
    Pub,
    Dashboard,
    ImageBuilder,
    Supervisor,
    /// A stored PUB token whose row was deleted (`DELETE /auth/tokens/{id}`).
    RevokedPub,
    /// Signed with AUTH_KEY, `full_access`, never stored.
    ForgedInternal,
    /// Not a token at all.
    Garbage,
}

pub const ROLES: [Role; 13] = [
    Role::Anonymous,
    Role::InactiveUser,
    Role::User,
    Role::Admin,
    Role::Esc,
    Role::Fatman,
    Role::Pub,
    Role::Dashboard,
    Role::ImageBuilder,
    Role::Supervisor,
    Role::RevokedPub,
    Role::ForgedInternal,
    Role::Garbage,
];

pub struct Tokens {
    pub inactive: String,
    pub user: String,
    pub admin: String,
    pub esc: String,
    pub fatman: String,
    pub pub_token: String,
    pub dashboard: String,
    pub image_builder: String,
    pub supervisor: String,
    pub revoked: String,
    pub forged: String,
}

impl Tokens {
    pub fn of(&self, role: Role) -> Option<&str> {
        Some(match role {
            Role::Anonymous => return None,
            Role::InactiveUser => &self.inactive,
            Role::User => &self.user,
            Role::Admin => &self.admin,
            Role::Esc => &self.esc,
            Role::Fatman => &self.fatman,
            Role::Pub => &self.pub_token,
            Role::Dashboard => &self.dashboard,
            Role::ImageBuilder => &self.image_builder,
            Role::Supervisor => &self.supervisor,
            Role::RevokedPub => &self.revoked,
            Role::ForgedInternal => &self.forged,
            Role::Garbage => "not-a-token",
        })
    }
}

pub fn request<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    if let Some(token) = token {
        req.metadata_mut()
            .insert("x-racetrack-auth", token.parse().unwrap());
    }
    req
}

/// A second stored PUB token, then deleted: what a revoked internal token looks like.
pub async fn revoked_pub_token(app: &TestApp) -> String {
    let token = app.service_token(InternalService::Pub).await;
    let (status, subjects) = app
        .get("/api/v1/auth/subjects", Some(&app.admin_token))
        .await;
    assert_eq!(status, StatusCode::OK, "{subjects}");
    let subject = subjects
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["subject_type"] == "internal" && s["name"] == "pub")
        .unwrap_or_else(|| panic!("no pub subject in {subjects}"));
    let (status, tokens) = app
        .get(
            &format!(
                "/api/v1/auth/subjects/{}/tokens",
                subject["id"].as_str().unwrap()
            ),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let newest: &Value = tokens.as_array().unwrap().last().unwrap();
    let (status, body) = app
        .delete(
            &format!("/api/v1/auth/tokens/{}", newest["id"].as_str().unwrap()),
            Some(&app.admin_token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    token
}
