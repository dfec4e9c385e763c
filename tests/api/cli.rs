//! The `gazette` binary's own surface.

use std::process::Command;

use crate::helpers::Backend;

fn gazette() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gazette"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

pub fn help_lists_every_command() -> Result<(), libtest_mimic::Failed> {
    let output = gazette().arg("--help").output()?;
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout)?;
    for command in ["serve", "worker", "migrate"] {
        assert!(help.contains(command), "`{command}` missing from --help:\n{help}");
    }
    Ok(())
}

pub fn a_bad_config_value_stops_the_process_naming_the_key() -> Result<(), libtest_mimic::Failed> {
    for (var, value, key) in [
        ("GAZETTE_MAIL__TRANSPORT", "pigeon", "pigeon"),
        ("GAZETTE_SERVER__BASE_URL", "example.com", "example.com"),
        ("GAZETTE_DATABASE__URL", "mysql://x", "database.url"),
        ("GAZETTE_SERVER__PORT", "eighty", "port"),
    ] {
        let output = gazette().arg("migrate").env(var, value).output()?;
        assert_eq!(output.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8(output.stderr)?;
        assert!(
            stderr.contains("invalid configuration") && stderr.contains(key),
            "{var}={value}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
    }
    Ok(())
}

pub async fn migrate_applies_the_migrations_and_exits(backend: Backend) {
    let url = backend.database_url().to_owned();
    let output =
        tokio::task::spawn_blocking(move || gazette().arg("migrate").env("GAZETTE_DATABASE__URL", url).output())
            .await
            .unwrap()
            .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
    let settings = crate::helpers::test_settings(&backend, 25);
    let db = gazette::db::Db::connect(&settings.database).await.unwrap();
    let tables: i64 = gazette::with_pool!(&db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM subscribers").fetch_one(pool).await.unwrap()
    });
    assert_eq!(tables, 0);
}
