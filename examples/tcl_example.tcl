#!/usr/bin/tclsh
# tcl_example.tcl - flaxkv from Tcl's sqlite3 package (Debian: libsqlite3-tcl).
#
#   tclsh examples/tcl_example.tcl [DIR]      (from the repo root)
#
# Keeps app.db and its flaxkv store in DIR (default: a temporary directory,
# removed at exit): writes settings, a vector and a regular users table,
# flushes, reopens the database, reads everything back and joins the two
# tables.  Exits 1 if anything read back differs from what was written.
package require sqlite3

proc open_db {path} {
    sqlite3 db $path
    db enable_load_extension 1
    db eval {SELECT load_extension('build/flaxkv')}
    db enable_load_extension 0
}

proc expect {what got want} {
    if {$got ne $want} {
        puts stderr "MISMATCH $what: got \[$got\], want \[$want\]"
        exit 1
    }
}

if {$argc > 0} {
    set workdir [lindex $argv 0]
    file mkdir $workdir
} else {
    set workdir [exec mktemp -d -t flaxkv-tcl.XXXXXX]
}
set dbPath [file join $workdir app.db]
set vector {0.5 1.5 -2.0}

# Write: a flaxkv table (its LMDB store is the directory 'store' beside
# app.db) and a regular table, in the same database.
open_db $dbPath
db eval {
    PRAGMA journal_mode=WAL;
    CREATE VIRTUAL TABLE IF NOT EXISTS kv USING flaxkv(path='store');
    CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, name TEXT);
    REPLACE INTO users VALUES (1, 'alice'), (2, 'bob'), (3, 'carol');
}
foreach {id theme lang} {1 dark en 2 light fr} {
    # Tcl values are strings: CAST makes the key an INTEGER, like users.id.
    db eval {REPLACE INTO kv VALUES (CAST(:id AS INTEGER),
                                     json_object('theme', :theme, 'lang', :lang))}
}
set blob [binary format d* $vector]
db eval {REPLACE INTO kv VALUES ('vec', @blob)}   ;# @: bind as a BLOB
expect "flaxkv_flush()" [db onecolumn {SELECT flaxkv_flush()}] 1
db close

# Read, from a new connection: what the flush wrote to LMDB.
open_db $dbPath
puts "flaxkv [db onecolumn {SELECT json_extract(flaxkv_version(), '$.flaxkv')}],\
      SQLite [db onecolumn {SELECT sqlite_version()}], Tcl [info patchlevel]"
puts "store: [file join $workdir store]"
expect "len(kv)" [db onecolumn {SELECT count(*) FROM kv}] 3
set flushed [db onecolumn {SELECT json_extract(flaxkv_stat('kv'), '$.rows_flushed')}]
expect "rows in LMDB" $flushed 3
puts "rows in LMDB: $flushed"

expect "settings of user 2" [db eval {
    SELECT typeof(key), value->>'theme', value->>'lang' FROM kv WHERE key = 2
}] {integer light fr}
binary scan [db onecolumn {SELECT value FROM kv WHERE key = 'vec'}] d* back
expect "vector" $back $vector
set dot [db onecolumn {SELECT flaxkv_dot(value, value) FROM kv WHERE key = 'vec'}]
expect "flaxkv_dot(vec, vec)" $dot 6.5
puts "vec: $back dot(vec, vec) = $dot"

# Join: every user, with the theme from their settings if they have any.
set rows {}
db eval {
    SELECT users.name, kv.value->>'theme' AS theme
    FROM users LEFT JOIN kv ON kv.key = users.id
    ORDER BY users.id
} {
    lappend rows $name $theme
    puts [format "%-6s %s" $name [expr {$theme eq "" ? "(no settings)" : $theme}]]
}
expect "join" $rows {alice dark bob light carol {}}
db close
if {$argc == 0} { file delete -force $workdir }
puts ok
