//! The test PostgreSQL itself: it starts with an empty database, keeps its
//! data across a stop and a SIGKILL, and answers on the same URL after each.

mod common;

use common::postgres::Postgres;

fn count(url: &str) -> i64 {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.query_one("SELECT count(*) FROM t", &[]).unwrap().get(0)
}

#[test]
fn restarts_and_crashes_keep_the_data() {
    let mut pg = Postgres::start();
    let url = pg.url();
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
        .unwrap();
    drop(c);
    pg.restart();
    assert_eq!(count(&url), 1);
    pg.kill();
    assert!(postgres::Client::connect(&url, postgres::NoTls).is_err());
    pg.resume();
    assert_eq!(count(&url), 1);
}
