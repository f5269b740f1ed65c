//! URLs shown in messages and logs without their secrets.

/// A URL for messages and logs with its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return "(unparseable URL)".into();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    // libpq and sqlx also take the password as a parameter: `?password=…`, `?sslpassword=…`.
    if u.query_pairs().any(|(k, _)| is_secret_parameter(&k)) {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_parameter(&k) {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// A URL parameter that holds a secret (`password`, `sslpassword`, `pass`, `secret`, `token`).
fn is_secret_parameter(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "secret", "token", "key"]
        .iter()
        .any(|s| key.contains(s))
}
