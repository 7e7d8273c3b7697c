//! The spend journal: a journal left by a crash is replayed once at startup (what the database
//! already holds is skipped, a line cut short is ignored), two instances never share one, and
//! its figures are on `/metrics`.

use diesel::sql_types::{BigInt, Double, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use llmgate::config::{CliOverrides, Settings, SpendJournal};
use llmgate::db::models::SpendLogRow;
use llmgate::db::DbTarget;
use llmgate::journal::{encode, header, Entry};
use serde_json::json;

use crate::support::binary::{bin, free_port, temp_dir, Process};
use crate::support::db::{both, TestDb};
use crate::support::{chat_body, Gateway};

const PRICED: &str = "model_list:\n  - model_name: g\n    litellm_params: {model: openai/m, mock_response: 'four words of reply', input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}\n";

fn config(db_url: &str) -> String {
    format!("{PRICED}general_settings:\n  master_key: sk-durability-master-key-01\n  database_url: '{db_url}'\n  proxy_batch_write_at: 60\n")
}

#[derive(QueryableByName, Debug)]
struct Id {
    #[diesel(sql_type = Text)]
    request_id: String,
}

#[derive(QueryableByName, Debug)]
struct Spend {
    #[diesel(sql_type = Double)]
    spend: f64,
}

#[derive(QueryableByName, Debug)]
struct Mark {
    #[diesel(sql_type = BigInt)]
    applied_seq: i64,
}

fn run<T>(target: &DbTarget, sql: &str) -> Vec<T>
where
    T: QueryableByName<diesel::sqlite::Sqlite> + QueryableByName<diesel::pg::Pg> + 'static,
{
    match target {
        DbTarget::Sqlite(path) => diesel::sql_query(sql)
            .load(&mut SqliteConnection::establish(path).unwrap())
            .unwrap(),
        DbTarget::Postgres(url) => diesel::sql_query(sql)
            .load(&mut PgConnection::establish(url).unwrap())
            .unwrap(),
    }
}

fn execute(target: &DbTarget, sql: &str) {
    match target {
        DbTarget::Sqlite(path) => {
            diesel::sql_query(sql)
                .execute(&mut SqliteConnection::establish(path).unwrap())
                .unwrap();
        }
        DbTarget::Postgres(url) => {
            diesel::sql_query(sql)
                .execute(&mut PgConnection::establish(url).unwrap())
                .unwrap();
        }
    }
}

fn record(token: &str, id: &str, cost: f64) -> Entry {
    let now = chrono::Utc::now().naive_utc();
    Entry::Record {
        token: Some(token.into()),
        cost,
        row: SpendLogRow {
            request_id: id.into(),
            api_key: token.into(),
            model: "m".into(),
            model_group: "g".into(),
            model_id: "d".into(),
            api_base: "".into(),
            provider: "openai".into(),
            prompt_tokens: 10,
            completion_tokens: 20,
            total_tokens: 30,
            spend: cost,
            start_time: now,
            end_time: now,
            status: "success".into(),
            cache_hit: false,
            user_id: None,
            metadata: "{}".into(),
            team_id: None,
            end_user: None,
            request_tags: "[]".into(),
        },
    }
}

async fn new_key(gw: &Gateway) -> String {
    let r = gw
        .post(
            "/key/generate",
            Some("sk-durability-master-key-01"),
            &json!({"duration": null}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["key"].as_str().unwrap().to_owned()
}

#[actix_rt::test]
async fn a_journal_left_by_a_crash_is_replayed_once_skipping_what_the_database_holds() {
    for db in both() {
        // A first run makes the schema and a key.
        let first = Gateway::start(&config(&db.url)).await;
        let key = new_key(&first).await;
        first.stop().await;
        let token = llmgate::keys::hash_key(&key);
        // The journal as a crash between a spend write and the journal's cut leaves it: changes
        // 1 to 5, of which the database holds 1 to 3, and a sixth cut short mid-line.
        let path = temp_dir("replay").join("spend.journal");
        let mut bytes = header("crashed-run").into_bytes();
        for seq in 1..=5 {
            bytes.extend(encode(seq, &record(&token, &format!("r{seq}"), 0.5)));
        }
        bytes.extend(&encode(6, &record(&token, "r6", 0.5))[..40]);
        std::fs::write(&path, bytes).unwrap();
        execute(
            &db.target,
            "INSERT INTO llmgate_spend_journal (journal_id, applied_seq) VALUES ('crashed-run', 3)",
        );

        let mut settings = Settings::from_yaml(&config(&db.url), &CliOverrides::default()).unwrap();
        settings.spend_journal = SpendJournal::At(path.clone());
        let again = Gateway::start_with(settings).await;
        let mut ids: Vec<String> =
            run::<Id>(&db.target, "SELECT request_id FROM llmgate_spend_logs")
                .into_iter()
                .map(|r| r.request_id)
                .collect();
        ids.sort();
        assert_eq!(ids, ["r4", "r5"], "{:?}", db.target);
        let key_spend = run::<Spend>(
            &db.target,
            &format!("SELECT spend FROM llmgate_keys WHERE token = '{token}'"),
        )[0]
        .spend;
        assert!((key_spend - 1.0).abs() < 1e-9, "{key_spend}");
        let proxy = run::<Spend>(&db.target, "SELECT spend FROM llmgate_proxy_spend")[0].spend;
        assert!((proxy - 1.0).abs() < 1e-9, "{proxy}");
        let mark = run::<Mark>(
            &db.target,
            "SELECT applied_seq FROM llmgate_spend_journal WHERE journal_id = 'crashed-run'",
        );
        assert_eq!(mark[0].applied_seq, 5);
        // The file holds only its header now; new changes are numbered after 5 and land once.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            header("crashed-run")
        );
        let r = again
            .post("/v1/chat/completions", Some(&key), &chat_body("g"))
            .await;
        assert_eq!(r.status, 200);
        again
            .state
            .spend()
            .send(llmgate::actors::Flush)
            .await
            .unwrap()
            .unwrap();
        let mark = run::<Mark>(
            &db.target,
            "SELECT applied_seq FROM llmgate_spend_journal WHERE journal_id = 'crashed-run'",
        );
        assert_eq!(
            run::<Id>(&db.target, "SELECT request_id FROM llmgate_spend_logs").len(),
            3,
            "{:?}",
            db.target
        );
        assert_eq!(mark[0].applied_seq, 6, "{:?}", db.target);
        again.stop().await;
    }
}

#[actix_rt::test]
async fn answers_wait_for_the_journal_and_its_figures_are_on_metrics() {
    let gw = Gateway::start(&config("sqlite://:memory:")).await;
    for stream in [false, true] {
        let mut body = chat_body("g");
        body["stream"] = json!(stream);
        let r = gw
            .post(
                "/v1/chat/completions",
                Some("sk-durability-master-key-01"),
                &body,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let metrics = gw.get("/metrics", None).await.text;
    let read = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    // Each answer came after its record's sync: both records are synced by now.
    assert_eq!(read("llmgate_spend_journal_records_total "), 2.0);
    assert!(read("llmgate_spend_journal_syncs_total ") >= 1.0);
    assert!(read("llmgate_spend_journal_sync_seconds_count ") >= 1.0);
    assert_eq!(read("llmgate_spend_journal_unjournaled_total "), 0.0);
    assert!(read("llmgate_spend_journal_bytes ") > 0.0);
}

#[actix_rt::test]
async fn a_second_instance_on_the_same_journal_is_refused_at_startup() {
    let db = TestDb::sqlite();
    let dir = temp_dir("journal-lock");
    let cfg = dir.join("config.yaml");
    std::fs::write(&cfg, config(&db.url)).unwrap();
    let journal = dir.join("spend.journal");
    let env = [("LLMGATE_SPEND_JOURNAL", journal.to_str().unwrap())];
    let _first = Process::spawn(&["--config", cfg.to_str().unwrap()], &env);
    let out = bin()
        .args(["--config", cfg.to_str().unwrap(), "--host", "127.0.0.1"])
        .args(["--port", &free_port().to_string()])
        .env_remove("DATABASE_URL")
        .env("LLMGATE_SPEND_JOURNAL", &journal)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another llmgate"), "{err}");
}
