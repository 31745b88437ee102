//! Requests to a `TestApp` and their replies.

use serde_json::Value;
use std::io::Read;
use std::time::Duration;

use super::*;

impl TestApp {
    pub fn get(&self, path: &str, auth: Auth) -> Reply {
        self.send("GET", path, auth, None)
    }

    pub fn post(&self, path: &str, auth: Auth, body: Value) -> Reply {
        self.send("POST", path, auth, Some(body))
    }

    pub fn patch(&self, path: &str, auth: Auth, body: Value) -> Reply {
        self.send("PATCH", path, auth, Some(body))
    }

    pub fn delete(&self, path: &str, auth: Auth) -> Reply {
        self.send("DELETE", path, auth, None)
    }

    pub fn send(&self, method: &str, path: &str, auth: Auth, body: Option<Value>) -> Reply {
        let req =
            auth.apply(ureq::request(method, &self.url(path)).timeout(Duration::from_secs(60)));
        let result = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        Reply::from(result)
    }

    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut req = ureq::request(method, &self.url(path)).timeout(Duration::from_secs(60));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        Reply::from(req.send_bytes(body))
    }

    /// `POST /chat/completions` with an API key and a JSON body (a refusal is a reply too).
    pub fn chat_completion(&self, key: &str, body: Value) -> Reply {
        self.raw(
            "POST",
            "/api/v1/chat/completions",
            &[
                ("Authorization", &format!("Bearer {key}")),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
    }
}

#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    XApiKey(&'a str),
}

impl Auth<'_> {
    pub fn apply(self, req: ureq::Request) -> ureq::Request {
        match self {
            Auth::None => req,
            Auth::Bearer(v) => req.set("Authorization", &format!("Bearer {v}")),
            Auth::XApiKey(v) => req.set("X-API-Key", v),
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub body: Value,
}

impl Reply {
    pub fn from(result: Result<ureq::Response, ureq::Error>) -> Reply {
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .map(|n| {
                let v = resp.header(&n).unwrap_or_default().to_owned();
                (n, v)
            })
            .collect();
        let mut text = String::new();
        resp.into_reader().read_to_string(&mut text).unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// Asserts the full error envelope (docs: errors) and returns self for more checks.
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.body["success"], false, "{}", self.text);
        assert_eq!(self.body["error"], code, "{}", self.text);
        assert_eq!(self.body["statusCode"], status);
        assert!(self.body["message"].is_string());
        assert!(self.body["timestamp"].is_string());
        assert!(self.body["path"].is_string());
        assert!(self.body["method"].is_string());
        assert!(self.body["details"].is_object());
        let rid = self.header("X-Request-Id").expect("X-Request-Id");
        assert_eq!(self.body["meta"]["requestId"], rid);
        self
    }

    /// Asserts a 400 `VALIDATION_ERROR` whose `details.fields` names `field`.
    pub fn assert_invalid(&self, field: &str) -> &Self {
        self.assert_error(400, "VALIDATION_ERROR");
        let reason = &self.body["details"]["fields"][field];
        assert!(reason.is_string(), "{field} not named: {}", self.text);
        self
    }

    pub fn data(&self) -> &Value {
        assert_eq!(self.body["success"], true, "{}", self.text);
        &self.body["data"]
    }
}
