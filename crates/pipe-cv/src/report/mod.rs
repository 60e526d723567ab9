//! What `evaluate` renders: the self-contained `report.html` and its PNG
//! plots (the report folder itself is assembled by `pipe_core::report`).

pub mod html;
pub mod plots;
