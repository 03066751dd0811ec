#!/usr/bin/perl
# perl_example.pl - flaxkv from Perl's DBI + DBD::SQLite (Debian: libdbd-sqlite3-perl).
#
#   perl examples/perl_example.pl [DIR]      (from the repo root)
#
# Keeps app.db and its flaxkv store in DIR (default: a temporary directory,
# removed at exit): writes settings, a vector and a regular users table,
# flushes, reopens the database, reads everything back and joins the two
# tables.  Exits 1 if anything read back differs from what was written.
use strict;
use warnings;
use DBI qw(:sql_types);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use JSON::PP;

sub open_db {
    my ($path) = @_;
    # sqlite_see_if_its_a_number: bind 1 as an INTEGER, not as the text '1'.
    my $dbh = DBI->connect("dbi:SQLite:dbname=$path", '', '',
        { RaiseError => 1, AutoCommit => 1, sqlite_see_if_its_a_number => 1 });
    $dbh->sqlite_enable_load_extension(1);
    $dbh->sqlite_load_extension('build/flaxkv.so');
    $dbh->sqlite_enable_load_extension(0);
    return $dbh;
}

sub expect {
    my ($what, $got, $want) = @_;
    $_ //= 'NULL' for $got, $want;
    return if $got eq $want;
    print STDERR "MISMATCH $what: got [$got], want [$want]\n";
    exit 1;
}

my $workdir = @ARGV ? $ARGV[0] : tempdir('flaxkv-perl.XXXXXX', TMPDIR => 1, CLEANUP => 1);
make_path($workdir);
my $db_path = "$workdir/app.db";
my %settings = (1 => { theme => 'dark', lang => 'en' }, 2 => { theme => 'light', lang => 'fr' });
my @vector = (0.5, 1.5, -2.0);
my $json = JSON::PP->new->canonical;    # keys sorted: one text per document

# Write: a flaxkv table (its LMDB store is the directory 'store' beside
# app.db) and a regular table, in the same database.
my $dbh = open_db($db_path);
$dbh->do('PRAGMA journal_mode=WAL');
$dbh->do("CREATE VIRTUAL TABLE IF NOT EXISTS kv USING flaxkv(path='store')");
$dbh->do('CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, name TEXT)');
$dbh->do('REPLACE INTO users VALUES (?, ?)', undef, @$_)
    for [1, 'alice'], [2, 'bob'], [3, 'carol'];
my $put = $dbh->prepare('REPLACE INTO kv VALUES (?, ?)');
$put->execute($_, $json->encode($settings{$_})) for sort keys %settings;
$put->bind_param(1, 'vec');
$put->bind_param(2, pack('d*', @vector), SQL_BLOB);    # bytes are TEXT unless told
$put->execute;
expect('flaxkv_flush()', $dbh->selectrow_array('SELECT flaxkv_flush()'), 1);
$dbh->disconnect;

# Read, from a new connection: what the flush wrote to LMDB.
$dbh = open_db($db_path);
my $version = $json->decode($dbh->selectrow_array('SELECT flaxkv_version()'));
print "flaxkv $version->{flaxkv}, SQLite $version->{sqlite}, DBD::SQLite $DBD::SQLite::VERSION\n";
print "store: $workdir/store\n";
expect('len(kv)', $dbh->selectrow_array('SELECT count(*) FROM kv'), 3);
my $flushed = $dbh->selectrow_array(q{SELECT json_extract(flaxkv_stat('kv'), '$.rows_flushed')});
expect('rows in LMDB', $flushed, 3);
print "rows in LMDB: $flushed\n";

for my $id (sort keys %settings) {
    my ($type, $value) = $dbh->selectrow_array('SELECT typeof(key), value FROM kv WHERE key = ?', undef, $id);
    expect("type of key $id", $type, 'integer');
    expect("settings of user $id", $value, $json->encode($settings{$id}));
}
my @back = unpack('d*', $dbh->selectrow_array(q{SELECT value FROM kv WHERE key = 'vec'}));
expect('vector', "@back", "@vector");
my $dot = $dbh->selectrow_array(q{SELECT flaxkv_dot(value, value) FROM kv WHERE key = 'vec'});
expect('flaxkv_dot(vec, vec)', $dot, 6.5);
print "vec: @back dot(vec, vec) = $dot\n";

# Join: every user, with the theme from their settings if they have any.
my $rows = $dbh->selectall_arrayref(q{
    SELECT users.name, json_extract(kv.value, '$.theme')
    FROM users LEFT JOIN kv ON kv.key = users.id
    ORDER BY users.id});
expect('join', join(' ', map { $_ // 'NULL' } map { @$_ } @$rows), 'alice dark bob light carol NULL');
printf "%-6s %s\n", $_->[0], $_->[1] // '(no settings)' for @$rows;
$dbh->disconnect;
print "ok\n";
