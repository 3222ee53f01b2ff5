//! Cold-start benchmark (filled in below).
fn main() {}
