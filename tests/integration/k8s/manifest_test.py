"""The deployment files start the binaries we build, with flags they accept, keys everywhere.

orchestration/k8s/switchyard.yaml and orchestration/docker/docker-compose.yml are only
text until someone deploys them; this test catches the drift that would make a deployed
cluster fail or run open: a flag a binary no longer has, a networked process without
--keys (or with --insecure), a node count that disagrees between the coordinator, the
hosts and the trainers, a Secret mounted into a serving container, or a key-install step
that gives a pod someone else's key. The init containers' commands are run for real on
keys made by `syctl keygen --cluster`. Needs SY_BIN_DIR (the built binaries) and python3-yaml.
"""
import os
import re
import shlex
import stat
import subprocess
import sys
import tempfile
import unittest

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
K8S = os.path.join(ROOT, "orchestration", "k8s", "switchyard.yaml")
COMPOSE = os.path.join(ROOT, "orchestration", "docker", "docker-compose.yml")
BIN_DIR = os.environ.get("SY_BIN_DIR", "")
NETWORKED = ("sy-coordinator", "sy-expert-host", "sy-trainer")
BINARIES = NETWORKED + ("syctl",)


def known_flags(binary):
    out = subprocess.run([os.path.join(BIN_DIR, binary), "--helpfull"], capture_output=True, text=True, timeout=30)
    flags = set(re.findall(r"^\s+--([a-z_0-9]+)", out.stdout + out.stderr, re.M))
    if not flags:
        raise AssertionError(f"{binary} --helpfull listed no flags: {out.stdout}{out.stderr}")
    return flags


def invocations(command, env):
    """(binary, [flag names], {flag: value}) for each of our binaries a container command runs."""
    words = command
    if len(command) >= 3 and command[0] == "sh" and command[1] == "-c":
        text = command[2].replace("$$", "$")
        for name, value in env.items():
            text = text.replace("$" + name, value).replace("${" + name + "}", value)
        words = shlex.split(text)
    found = []
    for i, word in enumerate(words):
        if os.path.basename(word) not in BINARIES:
            continue
        names, values = [], {}
        for arg in words[i + 1:]:
            if arg in ("&&", ";", "||"):
                break
            if arg.startswith("--"):
                name, _, value = arg[2:].partition("=")
                names.append(name)
                values[name] = value
        found.append((os.path.basename(word), names, values))
    return found


def load_k8s():
    with open(K8S) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    return by_kind


def pod_spec(workload):
    return workload["spec"]["template"]["spec"]


class ManifestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not BIN_DIR:
            raise unittest.SkipTest("SY_BIN_DIR is not set")
        cls.flags = {b: known_flags(b) for b in NETWORKED + ("syctl",)}
        cls.k8s = load_k8s()
        cls.model_env = cls.k8s["ConfigMap"]["switchyard-model"]["data"]

    def k8s_workloads(self):
        return list(self.k8s["StatefulSet"].values()) + list(self.k8s["Job"].values())

    def k8s_invocations(self):
        out = []
        for w in self.k8s_workloads():
            for c in pod_spec(w).get("containers", []):
                out += [(w["metadata"]["name"], *inv) for inv in invocations(c["command"], self.model_env)]
        return out

    def check_flags(self, where, binary, names):
        unknown = sorted(set(names) - self.flags[binary])
        self.assertEqual(unknown, [], f"{where}: {binary} has no flag(s) {unknown}")

    def test_every_k8s_command_uses_flags_its_binary_has(self):
        runs = self.k8s_invocations()
        self.assertEqual(sorted({b for _, b, _, _ in runs}), sorted(NETWORKED))
        for where, binary, names, _ in runs:
            self.check_flags(where, binary, names)

    def test_every_compose_command_uses_flags_its_binary_has(self):
        with open(COMPOSE) as f:
            compose = yaml.safe_load(f)
        env = {"SY_MODEL_FLAGS": compose["x-model-flags"]["SY_MODEL_FLAGS"]}
        seen = set()
        for name, service in compose["services"].items():
            command = service.get("command")
            if not command:
                continue
            text = [re.sub(r"\$\{(\w+):-([^}]*)\}", r"\2", w) for w in command]
            for binary, names, _ in invocations(text, env):
                seen.add(binary)
                if binary == "syctl":
                    self.run_compose_keygen(name, text)
                else:
                    self.check_flags(f"compose service {name}", binary, names)
        self.assertTrue(set(NETWORKED) <= seen, seen)

    def run_compose_keygen(self, service, command):
        """syctl's subcommand flags are not in --helpfull: the keys service's command runs for real."""
        with tempfile.TemporaryDirectory() as tmp:
            keys = os.path.join(tmp, "keys")
            script = command[2].replace("/keys", keys)
            env = dict(os.environ, PATH=BIN_DIR + os.pathsep + os.environ["PATH"])
            ran = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=30)
            self.assertEqual(ran.returncode, 0, f"compose service {service}: {ran.stderr}")
            with open(os.path.join(keys, "allowlist")) as f:
                nodes = [line for line in f.read().splitlines() if line and not line.startswith("#")]
            self.assertEqual(len(nodes), 6, f"compose service {service}: {nodes}")

    def test_every_networked_process_runs_with_keys(self):
        for where, binary, names, values in self.k8s_invocations():
            self.assertEqual(values.get("keys"), "/keys", f"{where}: {binary} without --keys=/keys")
            self.assertNotIn("insecure", names, f"{where}: {binary} runs --insecure")

    def test_node_counts_and_addresses_agree(self):
        coordinator = [v for _, b, _, v in self.k8s_invocations() if b == "sy-coordinator"][0]
        hosts = self.k8s["StatefulSet"]["host"]
        trainers = self.k8s["Job"]["trainer"]
        host_flags = [v for w, b, _, v in self.k8s_invocations() if b == "sy-expert-host"][0]
        trainer_flags = [v for w, b, _, v in self.k8s_invocations() if b == "sy-trainer"][0]
        replicas = hosts["spec"]["replicas"]
        self.assertEqual(int(coordinator["expected_hosts"]), replicas)
        self.assertEqual(int(host_flags["num_hosts"]), replicas)
        self.assertEqual(trainer_flags["hosts"].split(","),
                         [f"tcp://host-{i}.{hosts['spec']['serviceName']}:5555" for i in range(replicas)])
        self.assertEqual(int(trainer_flags["num_trainers"]), trainers["spec"]["completions"])
        self.assertEqual(trainers["spec"]["completionMode"], "Indexed")
        services = self.k8s["Service"]
        self.assertIn(hosts["spec"]["serviceName"], services)
        self.assertEqual(services["host"]["spec"]["clusterIP"], "None")
        for flags in (host_flags, trainer_flags):
            self.assertEqual(flags["coordinator"], "tcp://coordinator:7000")
        self.assertEqual(services["coordinator"]["spec"]["ports"][0]["port"], 7000)

    def test_kinds_images_and_ports(self):
        self.assertEqual(sorted(self.k8s), ["ConfigMap", "Job", "Service", "StatefulSet"])
        with open(COMPOSE) as f:
            image = yaml.safe_load(f)["services"]["coordinator"]["image"]
        services = self.k8s["Service"]
        for w in self.k8s_workloads():
            spec = pod_spec(w)
            for c in spec.get("initContainers", []) + spec["containers"]:
                self.assertEqual(c["image"], image, f"{w['metadata']['name']}/{c['name']}")
            for c in spec["containers"]:
                text = " ".join(c["command"])
                listen = re.search(r"--listen=tcp://[^:]+:(\d+)", text)
                ports = [p["containerPort"] for p in c.get("ports", [])]
                if listen is None:
                    self.assertEqual(ports, [], c["name"])
                    continue
                self.assertEqual(ports, [int(listen.group(1))], c["name"])
                name = w["spec"].get("serviceName")
                self.assertIn(name, services, c["name"])
                self.assertEqual([p["port"] for p in services[name]["spec"]["ports"]], ports, name)
                self.assertEqual(services[name]["spec"]["selector"], w["spec"]["selector"]["matchLabels"], name)
        self.assertIn("volumeClaimTemplates", self.k8s["StatefulSet"]["switchyard-coordinator"]["spec"])

    def test_the_key_secret_is_mounted_only_into_init_containers(self):
        for w in self.k8s_workloads():
            spec = pod_spec(w)
            secret_volumes = {v["name"] for v in spec["volumes"] if "secret" in v}
            self.assertEqual(secret_volumes, {"all-keys"}, w["metadata"]["name"])
            for c in spec["containers"]:
                mounted = {m["name"] for m in c.get("volumeMounts", [])}
                self.assertFalse(mounted & secret_volumes, f"{w['metadata']['name']}/{c['name']} mounts the Secret")
            keys = [v for v in spec["volumes"] if v["name"] == "keys"][0]
            self.assertEqual(keys["emptyDir"].get("medium"), "Memory")

    def run_init(self, workload, pod_env, hostname):
        """Runs the workload's key-install init command on real keys; returns {file: mode}."""
        with tempfile.TemporaryDirectory() as tmp:
            all_keys, keys, fake_bin = (os.path.join(tmp, d) for d in ("all-keys", "keys", "bin"))
            os.makedirs(keys)
            os.makedirs(fake_bin)
            made = subprocess.run([os.path.join(BIN_DIR, "syctl"), "keygen", f"--cluster={all_keys}", "--hosts=2",
                                   "--trainers=2", "--operators=1"], capture_output=True, text=True, timeout=30)
            self.assertEqual(made.returncode, 0, made.stderr)
            with open(os.path.join(fake_bin, "hostname"), "w") as f:
                f.write(f"#!/bin/sh\necho {hostname}\n")
            os.chmod(os.path.join(fake_bin, "hostname"), 0o755)
            init = pod_spec(workload)["initContainers"][0]
            self.assertEqual(init["command"][:2], ["sh", "-c"])
            script = init["command"][2].replace("/all-keys", all_keys).replace("/keys", keys)
            env = dict(os.environ, PATH=fake_bin + os.pathsep + os.environ["PATH"], **pod_env)
            ran = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=30)
            self.assertEqual(ran.returncode, 0, ran.stderr)
            return {name: stat.S_IMODE(os.stat(os.path.join(keys, name)).st_mode) for name in os.listdir(keys)}

    def test_each_pod_gets_the_allowlist_and_only_its_own_key(self):
        got = self.run_init(self.k8s["StatefulSet"]["host"], {"HOSTNAME": "host-1"}, "host-1")
        self.assertEqual(got, {"allowlist": 0o644, "host-1.key": 0o600})
        got = self.run_init(self.k8s["Job"]["trainer"], {"JOB_COMPLETION_INDEX": "0"}, "trainer-0-xyz")
        self.assertEqual(got, {"allowlist": 0o644, "trainer-0.key": 0o600})
        got = self.run_init(self.k8s["StatefulSet"]["switchyard-coordinator"], {}, "switchyard-coordinator-0")
        self.assertEqual(got, {"allowlist": 0o644, "coordinator.key": 0o600, "operator-0.key": 0o600})

    def test_the_host_index_comes_from_the_pod_name(self):
        host = pod_spec(self.k8s["StatefulSet"]["host"])["containers"][0]["command"][2]
        index = re.search(r"--host_index=(\S+)", host).group(1)
        out = subprocess.run(["sh", "-c", f"echo {index}"], capture_output=True, text=True,
                             env=dict(os.environ, HOSTNAME="host-7"), timeout=10)
        self.assertEqual(out.stdout.strip(), "7")


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1] + sys.argv[1:], verbosity=2)
