//! What Redis counts for a key's shared limits, read straight from its keys.

use redis::aio::MultiplexedConnection;

/// A connection to the Redis on `port`.
pub async fn connect(port: u16) -> MultiplexedConnection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The requests in key `token`'s minute window and the parallel slots it holds, under `ns`.
pub async fn requests_and_slots(
    conn: &mut MultiplexedConnection,
    ns: &str,
    token: &str,
) -> (u64, u64) {
    let sum: Option<u64> = redis::cmd("HGET")
        .arg(format!("{ns}:key:{token}:rpm"))
        .arg("sum")
        .query_async(conn)
        .await
        .unwrap();
    let held: u64 = redis::cmd("ZCARD")
        .arg(format!("{ns}:key:{token}:par"))
        .query_async(conn)
        .await
        .unwrap();
    (sum.unwrap_or(0), held)
}
