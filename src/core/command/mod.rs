//! ChatOps commands in pull/merge request comments.

pub mod parser;

pub use parser::{parse, Command, ParseError, Prefixes};
