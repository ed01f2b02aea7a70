//! The `nettrace` command-line tool.

fn main() {}
