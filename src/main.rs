//! airgate CLI.
fn main() {}
