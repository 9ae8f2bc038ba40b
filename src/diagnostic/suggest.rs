//! "Did you mean …?": the nearest known name to a misspelt one.

/// Returns the candidate closest to `wrong`, when it is close enough to be a likely typo.
///
/// Closeness is the Damerau-Levenshtein distance (a swapped pair of letters counts once),
/// allowed up to a third of the longer name, and at least one edit.
pub fn did_you_mean<'a, I>(wrong: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        if candidate == wrong {
            continue;
        }
        let distance =
            strsim::damerau_levenshtein(&wrong.to_lowercase(), &candidate.to_lowercase());
        let allowed = (wrong.len().max(candidate.len()) / 3).max(1);
        if distance <= allowed && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_transposition() {
        assert_eq!(
            did_you_mean("aprovers", ["approvers", "quorum"]).as_deref(),
            Some("did you mean `approvers`?")
        );
    }

    #[test]
    fn stays_quiet_when_nothing_is_close() {
        assert_eq!(did_you_mean("zzz", ["approvers", "quorum"]), None);
    }

    #[test]
    fn prefers_the_closest() {
        assert_eq!(
            did_you_mean("nees", ["needs", "name"]).as_deref(),
            Some("did you mean `needs`?")
        );
    }
}
