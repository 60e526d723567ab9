//! "Did you mean ...?" hints: the nearest valid name by edit distance.

/// The candidate closest to `word`, when it is close enough to be a typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word_lc = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&word_lc, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count().max(word.chars().count()) / 3).max(1) + usize::from(c.len() > 5))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn finds_typos_not_strangers() {
        assert_eq!(nearest("wrods", ["words", "attempts", "sample"]), Some("words"));
        assert_eq!(nearest("vocab", ["vocab_stage", "load"]), None);
        assert_eq!(nearest("cnn-stage", ["cnn-stage1", "cnn-stage2", "svm"]), Some("cnn-stage1"));
        assert_eq!(nearest("zzz", ["words"]), None);
    }
}
