//! The report's pictures, drawn with OpenCV and encoded as PNG:
//! confusion-matrix heatmaps (counts and row-normalised) and horizontal
//! stacked bar charts (images per class and split). Runs in the worker (the
//! `evaluate` stage), which links OpenCV.

use opencv::core::{Mat, Point, Rect, Scalar, Vector};
use opencv::imgproc::{FONT_HERSHEY_SIMPLEX, LINE_AA, put_text, rectangle};
use opencv::prelude::*;

use crate::algo::CvError;

fn cv(source: opencv::Error) -> CvError {
    CvError::OpenCv { step: "plot".into(), source }
}

/// BGR colour of `t` in [0, 1] on a viridis-like ramp.
fn ramp(t: f64) -> Scalar {
    const STOPS: [[f64; 3]; 5] = [[68.0, 1.0, 84.0], [59.0, 82.0, 139.0], [33.0, 145.0, 140.0], [94.0, 201.0, 98.0], [253.0, 231.0, 37.0]];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let (i, f) = ((t.floor() as usize).min(STOPS.len() - 2), t - t.floor());
    let c: Vec<f64> = (0..3).map(|k| STOPS[i][k] + (STOPS[i + 1][k] - STOPS[i][k]) * f).collect();
    Scalar::new(c[2], c[1], c[0], 0.0)
}

fn canvas(w: i32, h: i32) -> Result<Mat, CvError> {
    Mat::new_rows_cols_with_default(h, w, opencv::core::CV_8UC3, Scalar::all(255.0)).map_err(cv)
}

fn text(img: &mut Mat, s: &str, x: i32, y: i32, scale: f64, colour: Scalar) -> Result<(), CvError> {
    put_text(img, s, Point::new(x, y), FONT_HERSHEY_SIMPLEX, scale, colour, 1, LINE_AA, false).map_err(cv)
}

fn short(name: &str, n: usize) -> String {
    if name.chars().count() <= n { name.to_string() } else { name.chars().take(n - 1).collect::<String>() + "~" }
}

fn encode(img: &Mat) -> Result<Vec<u8>, CvError> {
    let mut buf = Vector::<u8>::new();
    opencv::imgcodecs::imencode(".png", img, &mut buf, &Vector::new()).map_err(cv)?;
    Ok(buf.to_vec())
}

/// A confusion matrix heatmap: rows true classes, columns predicted (by
/// number); `normalise` divides each row by its total.
pub fn confusion_png(m: &[Vec<usize>], classes: &[String], normalise: bool, title: &str) -> Result<Vec<u8>, CvError> {
    let n = classes.len() as i32;
    let cell = if n > 30 { 14 } else { 24 };
    let (left, top) = (190, 50);
    let mut img = canvas(left + n * cell + 20, top + n * cell + 30)?;
    text(&mut img, title, 10, 22, 0.55, Scalar::all(0.0))?;
    let max = m.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    for (r, row) in m.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        text(&mut img, &format!("{r:>2} {}", short(&classes[r], 22)), 6, top + r as i32 * cell + cell * 2 / 3, 0.4, Scalar::all(0.0))?;
        for (c, &v) in row.iter().enumerate() {
            let t = if normalise { v as f64 / total } else { (v as f64).ln_1p() / max.ln_1p() };
            let rect = Rect::new(left + c as i32 * cell, top + r as i32 * cell, cell, cell);
            rectangle(&mut img, rect, ramp(t), -1, LINE_AA, 0).map_err(cv)?;
            if cell >= 24 && v > 0 {
                let label = if normalise { format!("{:.0}", 100.0 * v as f64 / total) } else { v.to_string() };
                let colour = if t > 0.6 { Scalar::all(0.0) } else { Scalar::all(255.0) };
                text(&mut img, &label, rect.x + 2, rect.y + 16, 0.33, colour)?;
            }
        }
    }
    for c in 0..n {
        text(&mut img, &c.to_string(), left + c * cell + 3, top - 6, 0.35, Scalar::all(0.0))?;
    }
    text(&mut img, "predicted ->", left, top + n * cell + 20, 0.4, Scalar::all(80.0))?;
    encode(&img)
}

/// Horizontal stacked bars: one bar per category, one segment per series.
pub fn bars_png(categories: &[String], series: &[(&str, Vec<f64>, Scalar)], title: &str) -> Result<Vec<u8>, CvError> {
    let (left, top, row, width) = (190, 50, 18, 420);
    let n = categories.len() as i32;
    let mut img = canvas(left + width + 80, top + n * row + 20)?;
    text(&mut img, title, 10, 22, 0.55, Scalar::all(0.0))?;
    let mut x = left;
    for (name, _, colour) in series {
        rectangle(&mut img, Rect::new(x, 30, 10, 10), *colour, -1, LINE_AA, 0).map_err(cv)?;
        text(&mut img, name, x + 14, 40, 0.4, Scalar::all(0.0))?;
        x += 110;
    }
    let totals: Vec<f64> = (0..categories.len()).map(|i| series.iter().map(|s| s.1[i]).sum()).collect();
    let max = totals.iter().copied().fold(0.0, f64::max).max(1.0);
    for (i, cat) in categories.iter().enumerate() {
        let y = top + i as i32 * row;
        text(&mut img, &short(cat, 24), 6, y + 13, 0.4, Scalar::all(0.0))?;
        let mut x = left as f64;
        for (_, values, colour) in series {
            let w = values[i] / max * width as f64;
            if w >= 0.5 {
                rectangle(&mut img, Rect::new(x as i32, y + 2, w.ceil() as i32, row - 4), *colour, -1, LINE_AA, 0).map_err(cv)?;
            }
            x += w;
        }
        text(&mut img, &format!("{}", totals[i]), x as i32 + 4, y + 13, 0.38, Scalar::all(60.0))?;
    }
    encode(&img)
}

/// Line chart over epochs 1..=n: one line per series, y from 0 to the max.
pub fn lines_png(series: &[(&str, Vec<f64>, Scalar)], title: &str) -> Result<Vec<u8>, CvError> {
    let (left, top, w, h) = (60, 50, 420, 220);
    let mut img = canvas(left + w + 30, top + h + 40)?;
    text(&mut img, title, 10, 22, 0.55, Scalar::all(0.0))?;
    let n = series.iter().map(|s| s.1.len()).max().unwrap_or(0);
    let max = series.iter().flat_map(|s| s.1.iter().copied()).filter(|v| v.is_finite()).fold(0.0, f64::max).max(1e-9);
    rectangle(&mut img, Rect::new(left, top, w, h), Scalar::all(180.0), 1, LINE_AA, 0).map_err(cv)?;
    text(&mut img, &format!("{max:.2}"), 6, top + 10, 0.38, Scalar::all(60.0))?;
    text(&mut img, "0", 40, top + h, 0.38, Scalar::all(60.0))?;
    text(&mut img, "epoch", left + w / 2 - 20, top + h + 32, 0.4, Scalar::all(60.0))?;
    let x_of = |i: usize| left + if n > 1 { (i as i32) * w / (n as i32 - 1) } else { w / 2 };
    let y_of = |v: f64| top + h - ((v / max).clamp(0.0, 1.0) * h as f64) as i32;
    for i in 0..n {
        text(&mut img, &(i + 1).to_string(), x_of(i) - 4, top + h + 16, 0.35, Scalar::all(60.0))?;
    }
    let mut legend_x = left;
    for (name, values, colour) in series {
        for (i, pair) in values.windows(2).enumerate() {
            opencv::imgproc::line(
                &mut img,
                Point::new(x_of(i), y_of(pair[0])),
                Point::new(x_of(i + 1), y_of(pair[1])),
                *colour,
                2,
                LINE_AA,
                0,
            )
            .map_err(cv)?;
        }
        for (i, v) in values.iter().enumerate() {
            opencv::imgproc::circle(&mut img, Point::new(x_of(i), y_of(*v)), 3, *colour, -1, LINE_AA, 0).map_err(cv)?;
        }
        rectangle(&mut img, Rect::new(legend_x, 30, 10, 10), *colour, -1, LINE_AA, 0).map_err(cv)?;
        text(&mut img, name, legend_x + 14, 40, 0.4, Scalar::all(0.0))?;
        legend_x += 110;
    }
    encode(&img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_pngs() {
        let classes = vec!["cats".to_string(), "dogs".to_string()];
        let png = confusion_png(&[vec![3, 1], vec![0, 2]], &classes, true, "svm").unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let bars = bars_png(&classes, &[("train", vec![5.0, 2.0], Scalar::new(200.0, 120.0, 40.0, 0.0))], "images").unwrap();
        assert_eq!(&bars[1..4], b"PNG");
        let lines = lines_png(&[("loss", vec![2.0, 1.0, 0.5], Scalar::all(0.0))], "loss").unwrap();
        assert_eq!(&lines[1..4], b"PNG");
    }
}
