"""The database shared with the booking website (meccd-database(5)): in a group-writable
directory (the shipped /var/lib/meccd is 2770) meccd makes the database and its -wal and
-shm files group-writable, whatever the umask; in a private directory it leaves them
private."""
import os
import sqlite3
import stat

from harness import with_env


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def use_dir(env, name, dir_mode):
    d = os.path.join(env.dir, name)
    os.mkdir(d)
    os.chmod(d, dir_mode)
    env.db = os.path.join(d, "meccd.db")
    env.settings["database"] = env.db
    env.write_conf()
    return d


@with_env(smtp=False)
def test_new_database_in_a_shared_directory_is_group_writable(env):
    use_dir(env, "state", 0o2770)
    old = os.umask(0o077)
    try:
        env.ctl("init")
    finally:
        os.umask(old)
    assert mode(env.db) == 0o660, oct(mode(env.db))
    # another process (the website) opening it gets -wal and -shm with the same mode
    con = sqlite3.connect(env.db)
    try:
        con.execute("SELECT count(*) FROM registrations").fetchall()
        assert mode(env.db + "-wal") == 0o660 and mode(env.db + "-shm") == 0o660
    finally:
        con.close()


@with_env(smtp=False)
def test_existing_private_files_opened_up_in_a_shared_directory(env):
    # a database from an older install: 0600, with its -wal and -shm held open
    use_dir(env, "state", 0o2770)
    env.ctl("init")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(env.db + suffix):
            os.chmod(env.db + suffix, 0o600)
    os.chmod(env.db, 0o600)
    con = sqlite3.connect(env.db)
    try:
        con.execute("SELECT count(*) FROM sessions").fetchall()
        for suffix in ("-wal", "-shm"):
            os.chmod(env.db + suffix, 0o600)
        env.ctl("session", "list")
        modes = {s: oct(mode(env.db + s)) for s in ("", "-wal", "-shm")}
        assert set(modes.values()) == {"0o660"}, modes
    finally:
        con.close()


@with_env(smtp=False)
def test_private_directory_keeps_a_private_database(env):
    use_dir(env, "private", 0o700)
    old = os.umask(0o077)
    try:
        env.ctl("init")
    finally:
        os.umask(old)
    assert mode(env.db) == 0o600, oct(mode(env.db))
