"""The command line and configuration: subcommands, the three sources and their precedence
(flag > environment > file), one-line errors naming the key and where it came from, exit
status 2 for usage errors, init and check."""
import os
import re
import signal
import subprocess
import threading

import pytest

import openapi_contract
from conftest import BIN, LISTEN_RE

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


@pytest.fixture(autouse=True)
def _contract(monkeypatch):
    openapi_contract.install(monkeypatch)


def clean_env(**extra):
    """The environment without any RESORTD_* of the caller's, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESORTD_")}
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.update(extra)
    return env


def run(args, env=None, cwd=None, timeout=30):
    p = subprocess.run([BIN, *args], env=clean_env(**(env or {})), cwd=cwd, capture_output=True,
                       text=True, errors="replace", timeout=timeout)
    for mark in SANITIZER_MARKS:
        assert mark not in p.stderr, p.stderr
    return p


def usage_error(p):
    """Asserts exit 2 with exactly one line on stderr starting 'resortd: '; returns it."""
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("resortd: "), lines[0]
    return lines[0]


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---- subcommands ----

def test_version():
    p = run(["version"])
    assert p.returncode == 0
    assert re.fullmatch(r"resortd \d+\.\d+\.\d+\n", p.stdout), p.stdout
    assert run(["--version"]).stdout == p.stdout


def test_help_lists_commands_and_every_key():
    p = run(["help"])
    assert p.returncode == 0
    for word in ("serve", "init", "check", "version", "--config"):
        assert word in p.stdout, word
    for key in ("listen", "data-dir", "workers", "node-id", "log-level", "body-bytes-max",
                "header-deadline-s", "idle-timeout-s", "conns-max", "conns-per-addr-max",
                "map-size-mb", "projector-wait-ms"):
        assert f"--{key}" in p.stdout, key
    assert "127.0.0.1:8080" in p.stdout
    assert run(["--help"]).returncode == 0


def test_unknown_command_and_no_command(tmp_path):
    line = usage_error(run(["frobnicate"], cwd=tmp_path))
    assert "frobnicate" in line
    p = run([], cwd=tmp_path)
    assert p.returncode == 2 and "usage" in p.stderr
    assert not (tmp_path / "data").exists()


def test_init_then_check(tmp_path):
    d = tmp_path / "state"
    p = run(["init", "--data-dir", str(d)])
    assert p.returncode == 0, p.stderr
    m = re.search(r"node id ([a-z0-9_-]+)", p.stdout)
    assert m, p.stdout
    assert d.is_dir()
    p = run(["check", "--data-dir", str(d)])
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"^lmdb: durable", p.stdout, re.M), p.stdout
    assert "trade durability away" not in p.stdout
    assert p.stdout.rstrip().endswith("check: ok")
    # init again keeps the node id.
    again = run(["init", "--data-dir", str(d)])
    assert again.returncode == 0 and f"node id {m.group(1)}" in again.stdout


def test_check_after_serving_writes(make_server, tmp_path):
    d = tmp_path / "served"
    s = make_server(data_dir=d)
    for i in range(5):
        assert s.post_json("/v1/resorts", {"name": f"검사 {i}"}).status_code == 201
    assert s.stop() == 0
    p = run(["check", "--data-dir", str(d)])
    assert p.returncode == 0, p.stdout + p.stderr
    # 5 resorts after the admin's two sign-in events (user added, login).
    assert re.search(r"^log [a-z0-9_-]+: 7 events, projected up to 7$", p.stdout, re.M), p.stdout
    assert "check: ok" in p.stdout


def test_node_id_flag(tmp_path):
    p = run(["init", "--data-dir", str(tmp_path / "n"), "--node-id", "seoul-1"])
    assert p.returncode == 0 and "node id seoul-1" in p.stdout


# ---- errors: one line naming the key and its origin, exit 2 ----

def test_config_file_unknown_key(tmp_path):
    conf = write(tmp_path / "a.conf", "# resortd\nlisten = 127.0.0.1:0\n\nfoo = 1\n")
    line = usage_error(run(["check", "--config", conf, "--data-dir", str(tmp_path / "d")]))
    assert line == f"resortd: {conf}:4: unknown key 'foo'"
    assert not (tmp_path / "d").exists()


def test_config_file_bad_value(tmp_path):
    conf = write(tmp_path / "b.conf", "workers = 2\n  # indented comment\nworkers = abc\n")
    line = usage_error(run(["check", "--config", conf]))
    assert line == (f"resortd: {conf}:3: key 'workers': expected an integer from 0 to 64, "
                    f"got 'abc'")


@pytest.mark.parametrize("text,lineno", [
    ("this is not a setting\n", 1),
    ("\n\n= 5\n", 3),
    ("listen 127.0.0.1:8080\n", 1),
    ('node_id = "unterminated\n', 1),
    ('node_id = "a" trailing\n', 1),
])
def test_config_file_bad_line(tmp_path, text, lineno):
    conf = write(tmp_path / "c.conf", text)
    line = usage_error(run(["check", "--config", conf]))
    assert line.startswith(f"resortd: {conf}:{lineno}: "), line


@pytest.mark.parametrize("key,value", [
    ("listen", "nope"), ("listen", "127.0.0.1:70000"), ("workers", "65"), ("workers", "-1"),
    ("log_level", "loud"), ("node_id", "Upper"), ("body_bytes_max", "10"),
    ("map_size_mb", "0"), ("projector_wait_ms", "1"), ("projector_gather_ms", "1001"),
    ("conns_max", "1x"),
])
def test_every_source_names_key_and_origin(tmp_path, key, value):
    conf = write(tmp_path / "e.conf", f"# x\n{key} = {value}\n")
    line = usage_error(run(["check", "--config", conf]))
    assert line.startswith(f"resortd: {conf}:2: key '{key}': "), line
    assert value in line

    env_name = "RESORTD_" + key.upper()
    line = usage_error(run(["check"], env={env_name: value}, cwd=tmp_path))
    assert line.startswith(f"resortd: environment {env_name}: key '{key}': "), line

    flag = "--" + key.replace("_", "-")
    line = usage_error(run(["check", flag, value], cwd=tmp_path))
    assert line.startswith(f"resortd: flag {flag}: key '{key}': "), line
    line = usage_error(run(["check", f"{flag}={value}"], cwd=tmp_path))
    assert line.startswith(f"resortd: flag {flag}: key '{key}': "), line
    assert not (tmp_path / "data").exists()


def test_unknown_env_and_flag(tmp_path):
    line = usage_error(run(["check"], env={"RESORTD_COLOUR": "blue"}, cwd=tmp_path))
    assert line == "resortd: environment RESORTD_COLOUR: unknown key 'colour'"
    line = usage_error(run(["check", "--colour", "blue"], cwd=tmp_path))
    assert line == "resortd: flag --colour: unknown key 'colour'"
    line = usage_error(run(["check", "--workers"], cwd=tmp_path))
    assert "--workers" in line
    line = usage_error(run(["check", "stray"], cwd=tmp_path))
    assert "stray" in line
    # --demo belongs to serve only.
    usage_error(run(["check", "--demo"], cwd=tmp_path))


def test_missing_config_file(tmp_path):
    line = usage_error(run(["check", "--config", str(tmp_path / "absent.conf")]))
    assert str(tmp_path / "absent.conf") in line


def test_unwritable_data_dir(tmp_path):
    afile = tmp_path / "plain-file"
    afile.write_text("x")
    for cmd in ("serve", "init", "check"):
        line = usage_error(run([cmd, "--data-dir", str(afile / "sub"),
                                "--listen", "127.0.0.1:0"]))
        assert "data_dir" in line and str(afile / "sub") in line, line
        assert line.startswith("resortd: flag --data-dir: "), line
    conf = write(tmp_path / "f.conf", f"data_dir = {afile}/sub\n")
    line = usage_error(run(["init", "--config", conf]))
    assert line.startswith(f"resortd: {conf}:1: key 'data_dir'"), line
    line = usage_error(run(["init"], env={"RESORTD_DATA_DIR": str(afile)}))
    assert line.startswith("resortd: environment RESORTD_DATA_DIR: key 'data_dir'"), line


# ---- precedence: flag over environment over file ----

def test_precedence_by_data_dir(tmp_path):
    dirs = {k: tmp_path / f"from-{k}" for k in ("file", "env", "flag")}
    conf = write(tmp_path / "p.conf", f"data_dir = {dirs['file']}  # from the file\n")
    env = {"RESORTD_DATA_DIR": str(dirs["env"])}

    p = run(["init", "--config", conf, "--data-dir", str(dirs["flag"])], env=env)
    assert p.returncode == 0, p.stderr
    assert f"initialized {dirs['flag']} " in p.stdout
    assert [d.exists() for d in dirs.values()] == [False, False, True]

    p = run(["init", "--config", conf], env=env)
    assert p.returncode == 0 and f"initialized {dirs['env']} " in p.stdout
    assert [d.exists() for d in dirs.values()] == [False, True, True]

    p = run(["init", "--config", conf])
    assert p.returncode == 0 and f"initialized {dirs['file']} " in p.stdout
    assert all(d.exists() for d in dirs.values())

    # RESORTD_CONFIG names the file too; --config wins over it.
    other = write(tmp_path / "q.conf", f"data_dir = {tmp_path / 'from-q'}\n")
    p = run(["init"], env={"RESORTD_CONFIG": conf}, cwd=tmp_path)
    assert p.returncode == 0 and f"initialized {dirs['file']} " in p.stdout
    p = run(["init", f"--config={other}"], env={"RESORTD_CONFIG": conf}, cwd=tmp_path)
    assert p.returncode == 0 and f"initialized {tmp_path / 'from-q'} " in p.stdout


def test_precedence_by_node_id(tmp_path):
    conf = write(tmp_path / "n.conf", 'node_id = "from-file"\n')
    env = {"RESORTD_NODE_ID": "from-env"}
    cases = [(["--node-id", "from-flag"], env, "from-flag"), ([], env, "from-env"),
             ([], {}, "from-file")]
    for i, (flags, e, want) in enumerate(cases):
        p = run(["init", "--config", conf, "--data-dir", str(tmp_path / f"d{i}"), *flags], env=e)
        assert p.returncode == 0, p.stderr
        assert f"(node id {want})" in p.stdout, p.stdout


def serve_and_stop(args, env, cwd):
    """Starts serve, returns the (host, port) it logs, then stops it with SIGTERM (exit 0)."""
    proc = subprocess.Popen([BIN, "serve", *args], env=clean_env(**env), cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            errors="replace")
    lines, found = [], threading.Event()
    result = {}

    def drain():
        for line in proc.stderr:
            lines.append(line)
            m = LISTEN_RE.search(line)
            if m and not found.is_set():
                result["addr"] = (m.group(1), int(m.group(2)))
                found.set()

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    try:
        assert found.wait(20), "".join(lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(15)
        t.join(5)
    assert rc == 0, "".join(lines)
    text = "".join(lines)
    for mark in SANITIZER_MARKS:
        assert mark not in text, text
    return result["addr"], text


def test_precedence_by_listen_address(tmp_path):
    # Three loopback addresses tell the three sources apart; port 0 picks a free port.
    conf = write(tmp_path / "l.conf", "listen = 127.0.0.2:0\nworkers = 1\n")
    env = {"RESORTD_LISTEN": "127.0.0.3:0", "RESORTD_DATA_DIR": str(tmp_path / "d")}
    (host, port), _ = serve_and_stop(["--config", conf, "--listen=127.0.0.4:0"], env, tmp_path)
    assert host == "127.0.0.4" and port > 0
    (host, _), _ = serve_and_stop(["--config", conf], env, tmp_path)
    assert host == "127.0.0.3"
    (host, _), _ = serve_and_stop(["--config", conf],
                                  {"RESORTD_DATA_DIR": str(tmp_path / "d")}, tmp_path)
    assert host == "127.0.0.2"


def test_defaults_use_data_in_the_working_directory(tmp_path):
    p = run(["init"], cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "data").is_dir()
    p = run(["check"], cwd=tmp_path)
    assert p.returncode == 0 and "check: ok" in p.stdout


def test_log_level_from_config(tmp_path):
    # A fresh data dir logs its schema migration at info level.
    p = run(["init", "--data-dir", str(tmp_path / "a")])
    assert p.returncode == 0 and '"level":"info"' in p.stderr, p.stderr
    conf = write(tmp_path / "w.conf", "log_level = warn\n")
    p = run(["init", "--config", conf, "--data-dir", str(tmp_path / "b")])
    assert p.returncode == 0 and '"level":"info"' not in p.stderr, p.stderr
    p = run(["init", "--config", conf, "--data-dir", str(tmp_path / "c"), "--log-level", "debug"])
    assert p.returncode == 0 and '"level":"info"' in p.stderr, p.stderr
