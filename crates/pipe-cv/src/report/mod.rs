//! What `evaluate` renders: the self-contained `report.html`, its inline
//! SVG charts and its PNG plots (the report folder itself is assembled by `pipe_core::report`).

pub mod charts;
pub mod html;
pub mod plots;
