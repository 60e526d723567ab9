//! Classification metrics with scikit-learn's definitions and its
//! `zero_division=0` behaviour: a precision, recall or F-score whose
//! denominator is zero counts as 0. Averages run over the labels present in
//! `y_true` or `y_pred` (scikit-learn's default `labels`).

/// Per-label counts of one single-label prediction.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub tp: usize,
    pub fp: usize,
    pub fn_: usize,
    /// Occurrences in `y_true`.
    pub support: usize,
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 { 0.0 } else { num as f64 / den as f64 }
}

impl Counts {
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// F-beta; 0 when precision and recall are both 0.
    pub fn fbeta(&self, beta: f64) -> f64 {
        let b2 = beta * beta;
        let den = b2 * (self.tp + self.fn_) as f64 + (self.tp + self.fp) as f64;
        if den == 0.0 { 0.0 } else { (1.0 + b2) * self.tp as f64 / den }
    }
}

/// Counts per label `0..labels` for single-label predictions.
pub fn counts(y_true: &[usize], y_pred: &[usize], labels: usize) -> Vec<Counts> {
    let mut c = vec![Counts::default(); labels];
    for (&t, &p) in y_true.iter().zip(y_pred) {
        c[t].support += 1;
        if t == p {
            c[t].tp += 1;
        } else {
            c[t].fn_ += 1;
            c[p].fp += 1;
        }
    }
    c
}

pub fn accuracy(y_true: &[usize], y_pred: &[usize]) -> f64 {
    ratio(y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count(), y_true.len())
}

/// Macro F1 over the labels present in `y_true` or `y_pred`.
pub fn macro_f1(y_true: &[usize], y_pred: &[usize], labels: usize) -> f64 {
    let c = counts(y_true, y_pred, labels);
    let present: Vec<&Counts> = c.iter().filter(|c| c.support > 0 || c.fp > 0).collect();
    if present.is_empty() {
        return 0.0;
    }
    present.iter().map(|c| c.fbeta(1.0)).sum::<f64>() / present.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked by hand from the definitions (and what scikit-learn prints).
    #[test]
    fn single_label_by_hand() {
        // labels 0,1,2 (2 never predicted), label 3 never true but predicted.
        let y_true = [0, 0, 1, 1, 2];
        let y_pred = [0, 1, 1, 1, 3];
        let c = counts(&y_true, &y_pred, 4);
        assert_eq!(c[0], Counts { tp: 1, fp: 0, fn_: 1, support: 2 });
        assert_eq!(c[1], Counts { tp: 2, fp: 1, fn_: 0, support: 2 });
        assert_eq!((c[2].precision(), c[2].recall(), c[2].fbeta(1.0)), (0.0, 0.0, 0.0), "never predicted: zero_division=0");
        assert_eq!(c[3].recall(), 0.0, "never true: recall 0/0 -> 0");
        assert!((c[1].fbeta(1.0) - 0.8).abs() < 1e-12); // p 2/3, r 1 -> 0.8
        assert_eq!(accuracy(&y_true, &y_pred), 0.6);
        // macro over labels {0,1,2,3}: (2/3 + 0.8 + 0 + 0) / 4
        assert!((macro_f1(&y_true, &y_pred, 4) - (2.0 / 3.0 + 0.8) / 4.0).abs() < 1e-12);
        // F2 of label 0: p=1, r=0.5 -> 5*0.5/(4+... ) = 5*1*0.5/(4*1+0.5) = 0.5556
        assert!((c[0].fbeta(2.0) - 2.5 / 4.5).abs() < 1e-12);
    }
}
