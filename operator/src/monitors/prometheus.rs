//! The prometheus monitor's source: one instant PromQL query against the Prometheus HTTP API
//! (`/api/v1/query`), reduced to exactly one sample. Anything else is an error that says what
//! happened, so the policy reports it on the monitor instead of taking it for drift.

use std::time::Duration;

use serde::Deserialize;

use crate::api::Comparison;

/// How long one query may take when the caller does not say: well under a policy's shortest
/// interval (5 s is the CRD's minimum), so a hung Prometheus never delays the next evaluation.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(4);

/// Why a query gave no sample.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PrometheusError {
    #[error("{url} is not a valid Prometheus URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("Prometheus at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("Prometheus at {url} did not answer within {}s", timeout.as_secs_f64())]
    Timeout { url: String, timeout: Duration },
    #[error("Prometheus answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("Prometheus refused the query ({error_type}): {error}")]
    Api { error_type: String, error: String },
    #[error("Prometheus sent an answer that is not a query result: {0}")]
    Malformed(String),
    #[error("the query returned no series")]
    Empty,
    #[error("the query returned {count} series, one is needed (first two: {first}, {second})")]
    ManySeries { count: usize, first: String, second: String },
    #[error("the query returned a {0}, an instant vector of one series or a scalar is needed")]
    NotASample(String),
    #[error("the query returned {0}, which cannot be compared with a threshold")]
    NotFinite(String),
}

/// The value of `query` now: a scalar, or an instant vector of exactly one series.
pub async fn sample(http: &reqwest::Client, url: &str, query: &str) -> Result<f64, PrometheusError> {
    sample_within(http, url, query, QUERY_TIMEOUT).await
}

/// [`sample`], waiting at most `timeout` for the answer.
pub async fn sample_within(
    http: &reqwest::Client,
    url: &str,
    query: &str,
    timeout: Duration,
) -> Result<f64, PrometheusError> {
    let endpoint = query_url(url, query)?;
    let sent = http.get(endpoint).timeout(timeout).send().await;
    let response = sent.map_err(|error| transport_error(url, timeout, &error))?;
    let status = response.status();
    let body = response.text().await.map_err(|error| transport_error(url, timeout, &error))?;
    // Prometheus answers its API errors (a bad query: 400, a timeout of its own: 503) with a
    // JSON body that says more than the status does: read it first.
    match serde_json::from_str::<Answer>(&body) {
        Ok(Answer { status: AnswerStatus::Error, error_type, error, .. }) => Err(PrometheusError::Api {
            error_type: error_type.unwrap_or_else(|| "unknown".into()),
            error: error.unwrap_or_default(),
        }),
        Ok(Answer { status: AnswerStatus::Success, data: Some(data), .. }) if status.is_success() => one_sample(data),
        _ if !status.is_success() => Err(PrometheusError::Http { status: status.as_u16(), body: excerpt(&body) }),
        Ok(_) => Err(PrometheusError::Malformed("a success without data".into())),
        Err(error) => Err(PrometheusError::Malformed(format!("{error}: {}", excerpt(&body)))),
    }
}

/// Whether `value` breaches `threshold`.
pub fn compare(value: f64, comparison: Comparison, threshold: f64) -> bool {
    match comparison {
        Comparison::GreaterThan => value > threshold,
        Comparison::LessThan => value < threshold,
    }
}

/// `<url>/api/v1/query?query=...`, keeping a path prefix (Prometheus behind `--web.route-prefix`).
fn query_url(url: &str, query: &str) -> Result<reqwest::Url, PrometheusError> {
    let invalid = |reason: String| PrometheusError::InvalidUrl { url: url.to_string(), reason };
    let mut endpoint = reqwest::Url::parse(&format!("{}/api/v1/query", url.trim_end_matches('/')))
        .map_err(|error| invalid(error.to_string()))?;
    if !matches!(endpoint.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https".into()));
    }
    endpoint.query_pairs_mut().append_pair("query", query);
    Ok(endpoint)
}

fn transport_error(url: &str, timeout: Duration, error: &reqwest::Error) -> PrometheusError {
    if error.is_timeout() {
        return PrometheusError::Timeout { url: url.to_string(), timeout };
    }
    PrometheusError::Unreachable { url: url.to_string(), reason: trainloop_storage::error::error_chain(error) }
}

/// At most 200 characters of a body, for an error message.
fn excerpt(body: &str) -> String {
    let trimmed = body.trim();
    match trimmed.char_indices().nth(200) {
        Some((end, _)) => format!("{}...", &trimmed[..end]),
        None => trimmed.to_string(),
    }
}

/// The API's envelope (https://prometheus.io/docs/prometheus/latest/querying/api/#format-overview).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    status: AnswerStatus,
    data: Option<Data>,
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum AnswerStatus {
    Success,
    Error,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: serde_json::Value,
}

/// One series of an instant vector.
#[derive(Deserialize)]
struct Series {
    metric: std::collections::BTreeMap<String, String>,
    value: (f64, String),
}

fn one_sample(Data { result_type, result }: Data) -> Result<f64, PrometheusError> {
    let malformed = |error: serde_json::Error| PrometheusError::Malformed(format!("{result_type}: {error}"));
    let value = match result_type.as_str() {
        "scalar" => serde_json::from_value::<(f64, String)>(result).map_err(malformed)?.1,
        "vector" => {
            let mut series = serde_json::from_value::<Vec<Series>>(result).map_err(malformed)?;
            match series.len() {
                0 => return Err(PrometheusError::Empty),
                1 => series.remove(0).value.1,
                count => {
                    return Err(PrometheusError::ManySeries {
                        count,
                        first: selector(&series[0]),
                        second: selector(&series[1]),
                    });
                }
            }
        }
        other => return Err(PrometheusError::NotASample(other.to_string())),
    };
    // Prometheus writes NaN and the infinities as "NaN", "+Inf", "-Inf". Neither NaN nor an
    // infinity can be judged against a threshold, nor written into a status as JSON.
    match value.parse::<f64>() {
        Ok(number) if number.is_finite() => Ok(number),
        Ok(_) => Err(PrometheusError::NotFinite(value)),
        Err(_) => Err(PrometheusError::Malformed(format!("the sample {value:?} is not a number"))),
    }
}

/// A series as PromQL writes it: `{job="a", instance="b"}`.
fn selector(series: &Series) -> String {
    let labels: Vec<String> = series.metric.iter().map(|(name, value)| format!("{name}={value:?}")).collect();
    format!("{{{}}}", labels.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(result_type: &str, result: serde_json::Value) -> Data {
        Data { result_type: result_type.into(), result }
    }

    #[test]
    fn one_series_or_a_scalar_is_a_sample() {
        let vector = json!([{"metric": {"job": "a"}, "value": [1.5, "0.25"]}]);
        assert_eq!(one_sample(data("vector", vector)), Ok(0.25));
        assert_eq!(one_sample(data("scalar", json!([1.5, "-3"]))), Ok(-3.0));
    }

    #[test]
    fn anything_else_says_what_it_was() {
        assert_eq!(one_sample(data("vector", json!([]))), Err(PrometheusError::Empty));
        let two = json!([
            {"metric": {"job": "a"}, "value": [1.5, "1"]},
            {"metric": {"job": "b", "le": "0.5"}, "value": [1.5, "2"]},
        ]);
        assert_eq!(
            one_sample(data("vector", two)).map_err(|e| e.to_string()),
            Err(r#"the query returned 2 series, one is needed (first two: {job="a"}, {job="b", le="0.5"})"#.into())
        );
        assert_eq!(one_sample(data("matrix", json!([]))), Err(PrometheusError::NotASample("matrix".into())));
        assert_eq!(one_sample(data("string", json!([1.5, "x"]))), Err(PrometheusError::NotASample("string".into())));
        for special in ["NaN", "+Inf", "-Inf"] {
            assert_eq!(
                one_sample(data("scalar", json!([1.5, special]))),
                Err(PrometheusError::NotFinite(special.into()))
            );
        }
        assert!(matches!(one_sample(data("scalar", json!([1.5, "many"]))), Err(PrometheusError::Malformed(_))));
        assert!(matches!(one_sample(data("vector", json!({"no": "list"}))), Err(PrometheusError::Malformed(_))));
    }

    #[test]
    fn the_query_goes_under_the_path_prefix_encoded() {
        let url = query_url("http://prom:9090/prefix/", "rate(x{a=\"b c\"}[5m]) > 0").unwrap();
        assert_eq!(url.path(), "/prefix/api/v1/query");
        assert_eq!(url.query_pairs().next().unwrap().1, "rate(x{a=\"b c\"}[5m]) > 0");
        assert!(matches!(query_url("ftp://prom", "up"), Err(PrometheusError::InvalidUrl { .. })));
        assert!(matches!(query_url("not a url", "up"), Err(PrometheusError::InvalidUrl { .. })));
    }

    #[test]
    fn compare_is_strict_in_both_directions() {
        assert!(compare(0.21, Comparison::GreaterThan, 0.2));
        assert!(!compare(0.2, Comparison::GreaterThan, 0.2));
        assert!(compare(0.19, Comparison::LessThan, 0.2));
        assert!(!compare(0.2, Comparison::LessThan, 0.2));
    }

    #[test]
    fn a_long_body_is_cut() {
        assert_eq!(excerpt(&"é".repeat(300)), format!("{}...", "é".repeat(200)));
        assert_eq!(excerpt("  short\n"), "short");
    }
}
