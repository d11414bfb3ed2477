"""The command line itself: help, version, typos, usage errors."""

import re


def test_version(run_aas):
    p = run_aas("--version")
    assert p.returncode == 0
    assert re.fullmatch(r"aas-bundle \d+\.\d+\.\d+\n", p.stdout)


def test_help_lists_commands(run_aas):
    p = run_aas("--help")
    assert p.returncode == 0
    assert "copy" in p.stdout and "Copy an image or index between registries" in p.stdout


def test_subcommand_help(run_aas):
    p = run_aas("copy", "--help")
    assert p.returncode == 0
    for flag in ("--from-plain-http", "--to-insecure", "--from-ca-file", "--to-username",
                 "--password-stdin", "--from-password-stdin", "--registry-config", "--platform",
                 "--all-platforms", "--json", "--jobs", "--retries", "--stall-timeout"):
        assert flag in p.stdout, flag


def test_typo_suggests_command(run_aas):
    p = run_aas("cpy")
    assert p.returncode == 2
    assert "unknown command 'cpy'; did you mean 'copy'?" in p.stderr


def test_missing_argument_is_usage_error(run_aas):
    p = run_aas("copy", "only-one")
    assert p.returncode == 2
    assert "DST" in p.stderr


def test_username_without_password(run_aas):
    p = run_aas("copy", "--to-username", "bob", "127.0.0.1:1/a:1", "127.0.0.1:1/b")
    assert p.returncode == 2
    assert "--password-stdin" in p.stderr


def test_empty_password_stdin(run_aas):
    p = run_aas("copy", "--username", "bob", "--password-stdin", "127.0.0.1:1/a:1", "127.0.0.1:1/b", input="")
    assert p.returncode == 2
    assert "standard input was empty" in p.stderr


def test_platform_and_all_platforms_conflict(run_aas):
    p = run_aas("copy", "--all-platforms", "--platform", "linux/amd64", "127.0.0.1:1/a:1", "127.0.0.1:1/b")
    assert p.returncode == 2
    assert "exclude each other" in p.stderr


def test_bad_platform(run_aas):
    p = run_aas("copy", "--platform", "linux", "127.0.0.1:1/a:1", "127.0.0.1:1/b")
    assert p.returncode == 2
    assert 'invalid platform "linux"' in p.stderr


def test_progress_on_a_terminal(plain_registry, aas_bundle, workdir):
    """On a TTY, copy redraws one status line (\\r + erase) with bytes and rate."""
    from harness import images
    from harness.checks import run_on_terminal
    from harness.registry import clean_env
    images.push(plain_registry, "tty/img", "1", images.oci_image([images.make_layer("tty", 2 << 20)]))
    rc, text = run_on_terminal([str(aas_bundle), "copy", "--plain-http", plain_registry.ref("tty/img", "1"),
                                plain_registry.ref("tty/copy")], clean_env({"HOME": str(workdir)}))
    assert rc == 0, text
    assert "\r\x1b[K" in text
    assert "pulled" in text and "pushed" in text


def test_plain_progress_lines_when_not_a_terminal(plain_registry, run_aas):
    from harness import images
    images.push(plain_registry, "np/img", "1", images.oci_image([images.make_layer("np", 1000)]))
    p = run_aas("copy", "--plain-http", plain_registry.ref("np/img", "1"), plain_registry.ref("np/copy"))
    assert p.returncode == 0
    assert "\r" not in p.stderr and "\x1b[" not in p.stderr
    assert "blob sha256:" in p.stderr


def test_keygen(run_aas, workdir):
    import os
    import stat
    p = run_aas("keygen", "--out", str(workdir / "signer"))
    assert p.returncode == 0, p.stderr
    assert "fingerprint sha256:" in p.stdout
    mode = stat.S_IMODE(os.stat(workdir / "signer.key").st_mode)
    assert mode == 0o600
    before = (workdir / "signer.key").read_bytes()
    p = run_aas("keygen", "--out", str(workdir / "signer"))
    assert p.returncode == 2
    assert "already exists" in p.stderr
    assert (workdir / "signer.key").read_bytes() == before
    p = run_aas("keygen", "--out", str(workdir / "signer"), "--force")
    assert p.returncode == 0
    assert (workdir / "signer.key").read_bytes() != before


def test_one_flag_vocabulary_with_the_old_spellings_hidden(run_aas, workdir):
    """-f/--file is what is read, -o/--output what is written, in every command; the
    spellings of earlier versions still work but are not in --help."""
    for cmd, shown, hidden in [("pack", ("-f,--file", "-o,--output"), ("--manifest", "--out")),
                               ("load", ("-o,--output",), ("--out",)),
                               ("keygen", ("-o,--output",), ("--out",)),
                               ("images", ("-f,--file",), ())]:
        p = run_aas(cmd, "--help")
        assert p.returncode == 0, p.stderr
        for s in shown:
            assert s in p.stdout, (cmd, p.stdout)
        for h in hidden:
            assert h not in p.stdout.replace("-o,--output", "").replace("--output", ""), (cmd, h, p.stdout)
    assert run_aas("keygen", "-o", workdir / "a").returncode == 0
    assert run_aas("keygen", "--output", workdir / "b").returncode == 0
    assert run_aas("keygen", "--out", workdir / "c").returncode == 0  # the old spelling
    for n in ("a", "b", "c"):
        assert (workdir / f"{n}.pub").exists()
    p = run_aas("keygen")
    assert p.returncode == 2 and "-o/--output" in p.stderr, p.stderr
    p = run_aas("pack", "-o", workdir / "x.tar")
    assert p.returncode == 2 and "-f/--file" in p.stderr, p.stderr
