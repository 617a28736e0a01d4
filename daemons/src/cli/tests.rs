//! Each subcommand shows and takes only the flags it uses; client flags go before or after the command.

use clap::{CommandFactory, Parser};

use super::{Cli, Output};

fn flags(path: &[&str]) -> Vec<String> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut c = &cmd;
    for p in path {
        c = c.find_subcommand(p).expect("a subcommand");
    }
    c.get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect()
}

#[test]
fn roles_show_only_their_flags() {
    let standalone = flags(&["standalone"]);
    for absent in [
        "server",
        "output",
        "ca-cert",
        "kafka",
        "zookeeper",
        "kafka-prefix",
    ] {
        assert!(
            !standalone.iter().any(|f| f == absent),
            "standalone shows --{absent}"
        );
    }
    for present in [
        "listen",
        "store",
        "data-dir",
        "capacity",
        "admin-password-file",
        "log",
    ] {
        assert!(
            standalone.iter().any(|f| f == present),
            "standalone lacks --{present}"
        );
    }
    let executor = flags(&["executor"]);
    for absent in [
        "store",
        "admin-password-file",
        "session-ttl-secs",
        "rate-limit-user",
        "server",
    ] {
        assert!(
            !executor.iter().any(|f| f == absent),
            "executor shows --{absent}"
        );
    }
    for present in [
        "kafka",
        "zookeeper",
        "capacity",
        "jwt-secret-file",
        "secret-key-file",
    ] {
        assert!(
            executor.iter().any(|f| f == present),
            "executor lacks --{present}"
        );
    }
    let scheduler = flags(&["scheduler"]);
    assert!(scheduler.iter().any(|f| f == "kafka") && scheduler.iter().any(|f| f == "store"));
    assert!(!scheduler.iter().any(|f| f == "output"));
}

#[test]
fn client_flags_go_before_or_after_the_command_and_after_wins() {
    let before = Cli::try_parse_from([
        "jobsched", "--server", "http://a", "-o", "json", "jobs", "list",
    ])
    .unwrap();
    assert_eq!(before.client_args().server.as_deref(), Some("http://a"));
    assert_eq!(before.output(), Output::Json);
    let after = Cli::try_parse_from([
        "jobsched", "--server", "http://a", "jobs", "list", "--server", "http://b", "-o", "json",
    ])
    .unwrap();
    assert_eq!(after.client_args().server.as_deref(), Some("http://b"));
    assert_eq!(after.output(), Output::Json);
    let plain = Cli::try_parse_from(["jobsched", "tasks", "get", "t1"]).unwrap();
    assert_eq!(plain.output(), Output::Table);
    assert!(
        Cli::try_parse_from(["jobsched", "standalone", "--kafka", "k:9092"]).is_err(),
        "a role refuses a flag it does not take"
    );
}
