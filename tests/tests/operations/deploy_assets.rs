//! The deployment assets in deploy/ are checked with the tools that read them: systemd's own
//! verifier for the unit, a schema-aware validator for the Kubernetes manifests, and `paddock
//! check` for the configuration they ship.

use std::process::Command;

use harness::peers::find_program;
use harness::{demo_site, deploy, paddock_bin};

fn require(program: &str, install: &str) {
    assert!(
        find_program(program).is_some(),
        "{program} is required: {install} (scripts/test.sh does it)"
    );
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    require("systemd-analyze", "apt-get install systemd");
    let dir = tempfile::tempdir().unwrap();
    // The unit names the installed binary; point it at the one under test.
    let unit = std::fs::read_to_string(deploy("systemd/paddock.service"))
        .unwrap()
        .replace("/usr/local/bin/paddock", paddock_bin().to_str().unwrap());
    let path = dir.path().join("paddock.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let complaints = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && complaints.trim().is_empty(),
        "{complaints}"
    );
}

#[test]
fn kubernetes_manifests_validate_against_the_api_schemas() {
    require("kubernetes-validate", "pip install kubernetes-validate");
    let output = Command::new("kubernetes-validate")
        .arg(deploy("kubernetes/paddock.yaml"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{report}");
    for kind in [
        "configmap/paddock",
        "deployment/paddock",
        "service/paddock",
        "horizontalpodautoscaler/paddock",
    ] {
        assert!(
            report.contains(&format!("passed for resource {kind}")),
            "{kind}: {report}"
        );
    }
}

#[test]
fn shipped_container_config_is_valid() {
    // The image serves the demo from /srv/www; check the same file with the demo's path.
    let text = std::fs::read_to_string(deploy("kubernetes/paddock.toml"))
        .unwrap()
        .replace("/srv/www", demo_site().to_str().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paddock.toml");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(paddock_bin())
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // And the ConfigMap carries exactly that file.
    let manifest = std::fs::read_to_string(deploy("kubernetes/paddock.yaml")).unwrap();
    for line in std::fs::read_to_string(deploy("kubernetes/paddock.toml"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
    {
        assert!(
            manifest.contains(&format!("    {line}")),
            "ConfigMap lacks: {line}"
        );
    }
}
