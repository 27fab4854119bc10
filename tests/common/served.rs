//! Driving a `vouch serve` process (see `serve_process`) over HTTP: one call, and the clerk,
//! approver and submitted person-signing request most scenarios start from.

use super::p256_csr;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// An HTTP call to a `vouch serve` process: a POST with `body`, a POST without one to an
/// `/approve` path, else a GET.
pub async fn call(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = match body {
        Some(b) => client.post(format!("{base}{path}")).json(&b),
        None if path.ends_with("/approve") => client.post(format!("{base}{path}")),
        None => client.get(format!("{base}{path}")),
    };
    super::split(request.bearer_auth(token).send().await.unwrap()).await
}

/// With the admin token `admin` of the server at `base`: a clerk and an approver, a person
/// subscriber, and a person-signing request (P-256) the clerk submitted. Returns (clerk token,
/// approver token, request id).
pub async fn person_request(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
) -> (String, String, String) {
    let mut tokens = Vec::new();
    for (name, role) in [("clerk1", "clerk"), ("approver1", "approver")] {
        let body = json!({"name": name, "roles": [role]});
        let (status, op) = call(client, base, admin, "/api/v1/operators", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{op}");
        tokens.push(op["token"].as_str().unwrap().to_string());
    }
    let (clerk, approver) = (tokens[0].clone(), tokens[1].clone());
    let person = json!({"kind": "person", "name": "Li Wei", "email": "li.wei@example.org",
        "identifiers": [{"type": "national-id", "number": "110101199003070011",
                         "issuer": "Public Security Bureau", "valid_until": "2099-12-31"}]});
    let (status, sub) = call(client, base, &clerk, "/api/v1/subscribers", Some(person)).await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    let request =
        json!({"subscriber_id": sub["id"], "profile": "person-signing", "csr": p256_csr()});
    let (status, req) = call(client, base, &clerk, "/api/v1/requests", Some(request)).await;
    assert_eq!(status, StatusCode::CREATED, "{req}");
    let id = req["id"].as_str().unwrap().to_string();
    (clerk, approver, id)
}
