//! `deploy/kubernetes/` and `docker-compose.yml` say what each BFF runs with: every
//! ConfigMap's `config.toml`, with the variables its Deployment sets, must load as that
//! BFF's config (so a renamed or mistyped key fails here, not in a rollout), and the
//! Deployments keep what DESIGN.md asks of them. Kubernetes' own schemas are checked by
//! `.ci/run` (`kubernetes-validate --strict`).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use switchyard_core::bff::BffConfig;
use switchyard_core::config::{ConfigError, Profile};
use switchyard_tests::{ScratchDir, load_config};

fn repo(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// The documents of a multi-document YAML file.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("readable manifest");
    serde_norway::Deserializer::from_str(&text)
        .map(|document| Value::deserialize(document).expect("valid YAML"))
        .collect()
}

fn of_kind<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    documents
        .iter()
        .find(|document| document["kind"] == kind)
        .unwrap_or_else(|| panic!("a {kind}"))
}

/// `(its config.toml, the SWITCHYARD_ variables with placeholder values for those from
/// the secret, the manifest's documents)`.
fn config_of(bff: &str) -> (String, Vec<(String, String)>, Vec<Value>) {
    let documents = documents(&repo(&format!("deploy/kubernetes/{bff}.yaml")));
    let toml = of_kind(&documents, "ConfigMap")["data"]["config.toml"]
        .as_str()
        .expect("config.toml in the ConfigMap")
        .to_owned();
    let secret = documents_of_secret();
    let container = &of_kind(&documents, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let env = container["env"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|variable| {
            let name = variable["name"].as_str().expect("name").to_owned();
            let value = match variable["value"].as_str() {
                Some(value) => value.to_owned(),
                None => {
                    let key = variable["valueFrom"]["secretKeyRef"]["key"]
                        .as_str()
                        .expect("a value or a secret key");
                    secret[key]
                        .as_str()
                        .unwrap_or_else(|| panic!("secret.yaml has no {key}"))
                        .to_owned()
                }
            };
            (name, value)
        })
        .collect();
    (toml, env, documents)
}

fn documents_of_secret() -> Value {
    let documents = documents(&repo("deploy/kubernetes/secret.yaml"));
    of_kind(&documents, "Secret")["stringData"].clone()
}

fn load<T>(bff: &str) -> Result<(T, Vec<Value>), ConfigError>
where
    T: serde::de::DeserializeOwned + serde::Serialize + Default + switchyard_core::config::Validate,
{
    let (toml, env, documents) = config_of(bff);
    let dir = ScratchDir::new("k8s-config");
    let path = dir.write("config.toml", &toml);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    load_config::<T>(Some(&path), &env).map(|config| (config, documents))
}

/// What every Deployment must keep.
fn check_deployment(bff: &str, documents: &[Value], admin_port: u16) {
    let pod = &of_kind(documents, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(
        pod["enableServiceLinks"], false,
        "{bff}: service links inject SWITCHYARD_…_PORT"
    );
    let container = &pod["containers"][0];
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            container[probe]["httpGet"]["port"], "admin",
            "{bff} {probe}"
        );
    }
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    let admin = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|port| port["name"] == "admin")
        .expect("an admin port");
    assert_eq!(
        admin["containerPort"], admin_port,
        "{bff}: admin_listen's port"
    );
    assert!(
        container["resources"]["requests"]["cpu"].is_string(),
        "{bff}: a CPU request"
    );
    assert!(
        container["resources"]["limits"]["memory"].is_string(),
        "{bff}: a memory limit"
    );
    for kind in ["Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"] {
        assert_eq!(
            of_kind(documents, kind)["metadata"]["name"],
            bff,
            "{bff}: its {kind}"
        );
    }
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("a grace period");
    assert!(
        grace > 15,
        "{bff}: preStop 5 s + shutdown grace 10 s must fit in {grace} s"
    );
}

/// `bff`'s manifest, loaded as its config `C` and checked for what every BFF's must have:
/// the production profile, Redis from the secret, metrics on the admin port the probes
/// use.
fn production_config<C: BffConfig>(bff: &str) -> C {
    let (config, documents) = load::<C>(bff).unwrap_or_else(|error| panic!("{bff}: {error}"));
    assert_eq!(config.profile(), Profile::Production, "{bff}");
    assert!(
        config.redis().url.is_some(),
        "{bff}: shared state from the secret"
    );
    let admin = config
        .server()
        .admin_listen
        .unwrap_or_else(|| panic!("{bff}: admin_listen in production"));
    check_deployment(bff, &documents, admin.port());
    config
}

#[test]
fn every_bff_manifest_loads_as_its_config() {
    let web = production_config::<web_bff::WebConfig>("web-bff");
    assert_eq!(
        web.graphql.persisted_queries,
        web_bff::config::PersistedQueryMode::Trusted
    );
    production_config::<mobile_bff::MobileConfig>("mobile-bff");
    production_config::<iot_bff::IotConfig>("iot-bff");
    production_config::<partner_bff::PartnerConfig>("partner-bff");
}

#[test]
fn a_mistyped_key_in_a_manifest_would_fail_here() {
    let dir = ScratchDir::new("k8s-typo");
    let path = dir.write("config.toml", "[server]\nadmin_listne = \"0.0.0.0:9090\"\n");
    let error = load_config::<web_bff::WebConfig>(Some(&path), &[]).expect_err("unknown key");
    assert!(error.to_string().contains("admin_listne"), "{error}");
}

/// The `SWITCHYARD_…` variables of a compose service, anchors and merge keys resolved.
fn compose_env(services: &serde_norway::Value, service: &str) -> Vec<(String, String)> {
    let environment = services[service]["environment"]
        .as_mapping()
        .unwrap_or_else(|| panic!("{service} has an environment"));
    environment
        .iter()
        .map(|(key, value)| {
            let key = key.as_str().expect("a variable name").to_owned();
            let value = value
                .as_str()
                .unwrap_or_else(|| panic!("{key} is a string"))
                .to_owned();
            (key, value)
        })
        .collect()
}

fn loads_from_env<T>(env: &[(String, String)]) -> Result<T, ConfigError>
where
    T: serde::de::DeserializeOwned + serde::Serialize + Default + switchyard_core::config::Validate,
{
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    load_config::<T>(None, &env)
}

#[test]
fn docker_compose_runs_two_replicas_of_every_bff_behind_the_balancer_on_their_own_image_targets() {
    let text = std::fs::read_to_string(repo("docker-compose.yml")).expect("docker-compose.yml");
    let mut compose: serde_norway::Value = serde_norway::from_str(&text).expect("YAML");
    compose.apply_merge().expect("merge keys");
    let services = &compose["services"];
    let dockerfile = std::fs::read_to_string(repo("Dockerfile")).expect("Dockerfile");
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|line| line.starts_with("FROM "))
        .filter_map(|line| line.split(" AS ").nth(1))
        .collect();
    let balancer =
        std::fs::read_to_string(repo("deploy/haproxy/haproxy.cfg")).expect("haproxy.cfg");
    for bff in ["web-bff", "mobile-bff", "iot-bff", "partner-bff"] {
        for n in 1..=2 {
            let service = format!("{bff}-{n}");
            assert_eq!(
                services[service.as_str()]["build"]["target"].as_str(),
                Some(bff),
                "{service} builds its own image"
            );
            assert!(stages.contains(&bff), "the Dockerfile has a {bff} stage");
            let env = compose_env(services, &service);
            assert!(
                env.iter()
                    .any(|(k, v)| k == "SWITCHYARD_REDIS__URL" && v.starts_with("redis://")),
                "{service} shares state through Redis"
            );
            let loaded = match bff {
                "web-bff" => loads_from_env::<web_bff::WebConfig>(&env).map(drop),
                "mobile-bff" => loads_from_env::<mobile_bff::MobileConfig>(&env).map(drop),
                "iot-bff" => loads_from_env::<iot_bff::IotConfig>(&env).map(drop),
                _ => loads_from_env::<partner_bff::PartnerConfig>(&env).map(drop),
            };
            loaded.unwrap_or_else(|error| panic!("{service}: {error}"));
            assert!(
                balancer.contains(&format!(" {service}:")),
                "haproxy routes to {service}"
            );
        }
    }
}
