//! Reporters: pure renderers from case results to text. Siblings, each independent of the
//! others; the caller decides where their output goes.

pub mod html;
pub mod json;
pub mod junit;
pub mod matrix;
pub mod terminal;
