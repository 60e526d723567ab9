//! The report's charts drawn with `plotters` as SVG markup, embedded inline
//! in `report.html` (crisp at any zoom, with real axes, ticks, grid and
//! legends): the headline bars of every approach, the per-class F1 heatmap,
//! the overlaid training curves of the CNN approaches and, for a sweep, the
//! headline metric against each swept parameter. Text is left to
//! the browser's sans-serif font (no font files are read), and the markup
//! holds no timestamp or generated id, so the same inputs give the same bytes.
//! The OpenCV PNGs of `plots` stay beside them for papers and slides.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), Box<dyn std::error::Error>>;

/// A chart plotters could not draw (its message: plotters' errors are
/// generic over the backend).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ChartError(String);

/// Tableau's ten colours, the series' colours in order.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

const FONT: &str = "sans-serif";

/// `n` slots on an axis (0 to n): the ticks at their centres, where the
/// labels name them.
struct Slots(usize);

impl Ranged for Slots {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        limit.0 + (v / self.0.max(1) as f64 * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        (0..self.0).map(|i| i as f64 + 0.5).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.0 as f64
    }
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Mark {
    Bar,
    Line,
    Point,
}

/// Draws the page on a white SVG of `size` and returns its markup.
fn render(size: (u32, u32), draw: impl FnOnce(&Area<'_>) -> Drawn) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| ChartError(e.to_string()))?;
        draw(&root).map_err(|e| ChartError(e.to_string()))?;
        root.present().map_err(|e| ChartError(e.to_string()))?;
    }
    Ok(svg)
}

/// The title on top, a one-line legend under it; returns the area left.
fn title_and_legend<'a>(
    root: &Area<'a>,
    title: &str,
    entries: &[(String, RGBColor, Mark)],
) -> Result<Area<'a>, Box<dyn std::error::Error>> {
    let rest = root.titled(title, (FONT, 18))?;
    let (strip, rest) = rest.split_vertically(28);
    let mut x = 60;
    for (name, c, mark) in entries {
        match mark {
            Mark::Bar => strip.draw(&Rectangle::new([(x, 8), (x + 14, 20)], c.filled()))?,
            Mark::Line => strip.draw(&PathElement::new(vec![(x, 14), (x + 18, 14)], c.stroke_width(2)))?,
            Mark::Point => strip.draw(&Circle::new((x + 7, 14), 4, c.filled()))?,
        }
        strip.draw(&Text::new(name.clone(), (x + 22, 14), TextStyle::from((FONT, 13)).pos(Pos::new(HPos::Left, VPos::Center))))?;
        x += 40 + 7 * name.chars().count() as i32;
    }
    Ok(rest)
}

/// One value of a bar: the mean over repeats (or the single value) and the
/// 95% interval of the mean when there are repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub mean: f64,
    pub interval: Option<(f64, f64)>,
}

/// One group of bars: an approach (a variant, over its repeats) and one
/// value per metric of the chart (`None`: the metric does not apply).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub values: Vec<Option<Estimate>>,
}

/// Grouped bars: per approach, one bar per metric (`metrics` names them in
/// the order of each group's values), error bars for the intervals, and the
/// majority-class baseline as a horizontal line.
pub fn headline_svg(metrics: &[&str], groups: &[Group], baseline: Option<f64>) -> Result<String, ChartError> {
    let n = groups.len().max(1);
    let width = (200 + 110 * n as u32).max(640);
    render((width, 420), |root| {
        let mut entries: Vec<(String, RGBColor, Mark)> =
            metrics.iter().enumerate().map(|(j, m)| (m.to_string(), colour(j), Mark::Bar)).collect();
        if let Some(b) = baseline {
            entries.push((format!("majority-class baseline ({b:.3})"), BLACK, Mark::Line));
        }
        let area = title_and_legend(root, "headline metrics per approach (test split)", &entries)?;
        let mut chart =
            ChartBuilder::on(&area).margin(10).x_label_area_size(40).y_label_area_size(50).build_cartesian_2d(Slots(n), 0.0..1.0)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .y_labels(11)
            .x_desc("approach")
            .y_desc("score")
            .x_label_formatter(&|v| groups.get(v.floor() as usize).map_or(String::new(), |g| g.name.clone()))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .draw()?;
        let w = 0.8 / metrics.len().max(1) as f64;
        for (j, _) in metrics.iter().enumerate() {
            let bars = groups.iter().enumerate().filter_map(|(i, g)| {
                let e = g.values.get(j).copied().flatten()?;
                let x0 = i as f64 + 0.1 + j as f64 * w;
                Some(Rectangle::new([(x0, 0.0), (x0 + w * 0.92, e.mean.clamp(0.0, 1.0))], colour(j).filled()))
            });
            chart.draw_series(bars)?;
            let errors = groups.iter().enumerate().filter_map(|(i, g)| {
                let e = g.values.get(j).copied().flatten()?;
                let (lo, hi) = e.interval?;
                let x = i as f64 + 0.1 + (j as f64 + 0.46) * w;
                Some(ErrorBar::new_vertical(x, lo.clamp(0.0, 1.0), e.mean.clamp(0.0, 1.0), hi.clamp(0.0, 1.0), BLACK.stroke_width(1), 8))
            });
            chart.draw_series(errors)?;
        }
        if let Some(b) = baseline {
            chart.draw_series(DashedLineSeries::new(vec![(0.0, b), (n as f64, b)], 6, 4, BLACK.stroke_width(1)))?;
        }
        Ok(())
    })
}

/// Blues: white at 0 to dark blue at 1.
fn blues(v: f64) -> RGBColor {
    let t = v.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0))
}

/// Per-class F1: `classes` as rows (top to bottom), `approaches` as columns,
/// `f1[row][column]` (`None`: the approach has no such class), the value
/// written in each cell.
pub fn heatmap_svg(classes: &[String], approaches: &[String], f1: &[Vec<Option<f64>>]) -> Result<String, ChartError> {
    let (rows, cols) = (classes.len().max(1), approaches.len().max(1));
    let longest = classes.iter().map(|c| c.chars().count()).max().unwrap_or(5) as u32;
    let width = (60 + 8 * longest + 120 * cols as u32).max(480);
    let height = 130 + 26 * rows as u32;
    render((width, height), |root| {
        let area = root.titled("per-class F1 (test split; colour: 0 white, 1 dark blue)", (FONT, 18))?;
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(20 + 8 * longest)
            .build_cartesian_2d(Slots(cols), Slots(rows))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("approach")
            .x_label_formatter(&|v| approaches.get(v.floor() as usize).map_or(String::new(), |a| a.clone()))
            .y_label_formatter(&|v| {
                let r = rows as f64 - v.floor() - 1.0;
                classes.get(r as usize).filter(|_| r >= 0.0).map_or(String::new(), |c| c.clone())
            })
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .draw()?;
        for (r, row) in f1.iter().enumerate() {
            let y = (rows - r - 1) as f64;
            for (c, v) in row.iter().enumerate() {
                let x = c as f64;
                let fill = v.map_or(RGBColor(230, 230, 230), blues);
                chart.draw_series(std::iter::once(Rectangle::new([(x, y), (x + 1.0, y + 1.0)], fill.filled())))?;
                chart.draw_series(std::iter::once(Rectangle::new([(x, y), (x + 1.0, y + 1.0)], WHITE.stroke_width(1))))?;
                let text = v.map_or("-".to_string(), |v| format!("{v:.2}"));
                let ink = if v.is_some_and(|v| v > 0.55) { WHITE } else { BLACK };
                let style = TextStyle::from((FONT, 12)).color(&ink).pos(Pos::new(HPos::Center, VPos::Center));
                chart.draw_series(std::iter::once(Text::new(text, (x + 0.5, y + 0.5), style)))?;
            }
        }
        Ok(())
    })
}

/// One approach's values per epoch (epoch 1 first), and the epoch (index)
/// with the best validation loss, marked with a point; `colour` picks the
/// palette's entry, so an approach keeps its colour from chart to chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub name: String,
    pub colour: usize,
    pub values: Vec<f64>,
    pub best: Option<usize>,
}

/// Curves of several approaches overlaid: `metric` names the y axis.
pub fn curves_svg(metric: &str, curves: &[Curve]) -> Result<String, ChartError> {
    let epochs = curves.iter().map(|c| c.values.len()).max().unwrap_or(1).max(2);
    let finite = || curves.iter().flat_map(|c| c.values.iter().copied()).filter(|v| v.is_finite());
    let (lo, hi) = (finite().fold(f64::INFINITY, f64::min), finite().fold(f64::NEG_INFINITY, f64::max));
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else if lo.is_finite() {
        (lo - 0.5, lo + 0.5)
    } else {
        (0.0, 1.0)
    };
    let pad = (hi - lo) * 0.05;
    render((760, 400), |root| {
        let mut entries: Vec<(String, RGBColor, Mark)> = curves.iter().map(|c| (c.name.clone(), colour(c.colour), Mark::Line)).collect();
        entries.push(("best validation loss".into(), BLACK, Mark::Point));
        let area = title_and_legend(root, &format!("{metric} per epoch (CNN approaches)"), &entries)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(1..epochs as u32, (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(epochs.min(12))
            .x_desc("epoch")
            .y_desc(metric)
            .y_label_formatter(&|v| format!("{v:.3}"))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .draw()?;
        for c in curves {
            let points: Vec<(u32, f64)> =
                c.values.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(e, &v)| (e as u32 + 1, v)).collect();
            chart.draw_series(LineSeries::new(points, colour(c.colour).stroke_width(2)))?;
            if let Some(v) = c.best.and_then(|b| c.values.get(b).map(|&v| (b, v))).filter(|(_, v)| v.is_finite()) {
                chart.draw_series(std::iter::once(Circle::new((v.0 as u32 + 1, v.1), 5, colour(c.colour).filled())))?;
                chart.draw_series(std::iter::once(Circle::new((v.0 as u32 + 1, v.1), 5, BLACK.stroke_width(1))))?;
            }
        }
        Ok(())
    })
}

/// One line of a sweep chart: an approach (the other swept values fixed)
/// and its metric at each value of the swept parameter, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepLine {
    pub name: String,
    /// (the parameter's value as written, the metric over that value's repeats).
    pub points: Vec<(String, Estimate)>,
}

/// `metric` against the swept `param`: the values as equally spaced
/// positions (sorted as numbers), one line per approach, the 95% interval
/// of each point when it has repeats.
pub fn sweep_svg(param: &str, metric: &str, values: &[String], lines: &[SweepLine]) -> Result<String, ChartError> {
    let n = values.len().max(1);
    let all = || {
        lines
            .iter()
            .flat_map(|l| l.points.iter())
            .flat_map(|(_, e)| [e.mean, e.interval.map_or(e.mean, |i| i.0), e.interval.map_or(e.mean, |i| i.1)])
    };
    let (lo, hi) = (all().fold(f64::INFINITY, f64::min), all().fold(f64::NEG_INFINITY, f64::max));
    let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.1).max(0.01);
    render((760, 400), |root| {
        let entries: Vec<(String, RGBColor, Mark)> =
            lines.iter().enumerate().map(|(i, l)| (l.name.clone(), colour(i), Mark::Line)).collect();
        let area = title_and_legend(root, &format!("{metric} against {param} (test split)"), &entries)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(Slots(n), (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc(param)
            .y_desc(metric)
            .x_label_formatter(&|v| values.get(v.floor() as usize).cloned().unwrap_or_default())
            .y_label_formatter(&|v| format!("{v:.3}"))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .draw()?;
        for (i, line) in lines.iter().enumerate() {
            let at = |v: &String| values.iter().position(|x| x == v).map(|p| p as f64 + 0.5);
            let points: Vec<(f64, f64)> = line.points.iter().filter_map(|(v, e)| Some((at(v)?, e.mean))).collect();
            chart.draw_series(LineSeries::new(points.clone(), colour(i).stroke_width(2)))?;
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, colour(i).filled())))?;
            let errors = line.points.iter().filter_map(|(v, e)| {
                let (l, h) = e.interval?;
                Some(ErrorBar::new_vertical(at(v)?, l, e.mean, h, colour(i).stroke_width(1), 8))
            });
            chart.draw_series(errors)?;
        }
        Ok(())
    })
}

/// The index of the smallest finite value (the first of equals).
pub fn argmin(values: &[f64]) -> Option<usize> {
    values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .fold(None, |best: Option<(usize, f64)>, (i, &v)| match best {
            Some((_, b)) if b <= v => best,
            _ => Some((i, v)),
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn well_formed(svg: &str) {
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.len() > 500, "{svg}");
        assert!(svg.contains("<rect") || svg.contains("<polyline") || svg.contains("<path"));
    }

    #[test]
    fn headline_bars_have_their_series_axes_and_baseline() {
        let e = |m: f64, i: Option<(f64, f64)>| Some(Estimate { mean: m, interval: i });
        let groups = vec![
            Group { name: "svm".into(), values: vec![e(0.8, None), e(0.7, None)] },
            Group { name: "cnn[lr=0.01]".into(), values: vec![e(0.9, Some((0.85, 0.95))), e(0.88, Some((0.8, 0.96)))] },
        ];
        let svg = headline_svg(&["accuracy", "macro F1"], &groups, Some(0.25)).unwrap();
        well_formed(&svg);
        for text in ["accuracy", "macro F1", "svm", "cnn[lr=0.01]", "approach", "score", "majority-class baseline (0.250)"] {
            assert!(svg.contains(text), "{text}");
        }
        assert_eq!(svg, headline_svg(&["accuracy", "macro F1"], &groups, Some(0.25)).unwrap(), "deterministic");
    }

    #[test]
    fn heatmap_writes_each_cell() {
        let classes = vec!["cat".to_string(), "dog & co".to_string()];
        let approaches = vec!["svm".to_string(), "cnn".to_string()];
        let svg = heatmap_svg(&classes, &approaches, &[vec![Some(0.91), Some(0.5)], vec![None, Some(0.123)]]).unwrap();
        well_formed(&svg);
        for text in ["cat", "dog &amp; co", "svm", "cnn", "0.91", "0.50", "0.12", "per-class F1"] {
            assert!(svg.contains(text), "{text}");
        }
    }

    #[test]
    fn curves_overlay_the_approaches() {
        let curves = vec![
            Curve { name: "cnn_a".into(), colour: 0, values: vec![1.0, 0.6, 0.7], best: argmin(&[1.0, 0.6, 0.7]) },
            Curve { name: "cnn_b".into(), colour: 1, values: vec![0.9, 0.8, 0.5, 0.55], best: Some(2) },
        ];
        let svg = curves_svg("validation loss", &curves).unwrap();
        well_formed(&svg);
        for text in ["cnn_a", "cnn_b", "epoch", "validation loss", "best validation loss", "<circle"] {
            assert!(svg.contains(text), "{text}");
        }
        assert_eq!(argmin(&[f64::NAN, 2.0, 1.0, 1.0]), Some(2));
        assert_eq!(argmin(&[]), None);
        well_formed(&curves_svg("validation F2", &[Curve { name: "one".into(), colour: 0, values: vec![0.5], best: Some(0) }]).unwrap());
    }
}
