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
