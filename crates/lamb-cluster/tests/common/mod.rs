/// The throwaway PostgreSQL, shared with the other crates' tests.
pub use lamb_test_postgres as postgres;
