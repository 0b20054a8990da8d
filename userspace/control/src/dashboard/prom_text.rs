//! Reading the few counters the status page needs out of a Prometheus text exposition (what
//! every strata server's admin `/metrics` answers): `name{labels} value` lines, comments skipped.

/// The sum of every sample of metric `name` (all label sets), or `None` if it has none.
pub fn sum(text: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for (sample, _, value) in text.lines().filter_map(split) {
        if sample == name {
            *total.get_or_insert(0.0) += value;
        }
    }
    total
}

/// The sum of the samples of `name` whose label `label` starts with `prefix`
/// (e.g. statuses starting with "4").
pub fn sum_where(text: &str, name: &str, label: &str, prefix: &str) -> f64 {
    let wanted = format!("{label}=\"{prefix}");
    text.lines()
        .filter_map(split)
        .filter(|(sample, labels, _)| *sample == name && labels.contains(&wanted))
        .map(|(_, _, value)| value)
        .sum()
}

/// `name{labels} value` → (name, labels, value); None for comments and unreadable lines.
fn split(line: &str) -> Option<(&str, &str, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (head, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    match head.split_once('{') {
        Some((name, labels)) => Some((name, labels.trim_end_matches('}'), value)),
        None => Some((head, "", value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP strata_http_responses Responses.\n# TYPE strata_http_responses counter\nstrata_http_responses_total{status=\"200\"} 10\nstrata_http_responses_total{status=\"206\"} 5\nstrata_http_responses_total{status=\"404\"} 2\nstrata_cache_hits_total 7\n";

    #[test]
    fn samples_add_up_over_labels_and_filter_by_label_prefix() {
        assert_eq!(sum(TEXT, "strata_http_responses_total"), Some(17.0));
        assert_eq!(sum(TEXT, "strata_cache_hits_total"), Some(7.0));
        assert_eq!(sum(TEXT, "strata_absent_total"), None);
        assert_eq!(
            sum_where(TEXT, "strata_http_responses_total", "status", "2"),
            15.0
        );
        assert_eq!(sum_where(TEXT, "strata_http_responses_total", "status", "4"), 2.0);
    }
}
