#!/usr/bin/perl
# Load generated tickets into the embedded desk through RT's own API (RT::Ticket->Create,
# SetOwner, SetStatus, AddCustomFieldValue, Comment), so every ticket gets the same rows RT
# itself would write: transactions, attachments, custom-field values, role groups, links.
#
# Why not REST: one REST create costs ~0.5 s; in-process with scrips off and SQLite commits
# batched it is a few milliseconds.
#
# Input: JSON lines on STDIN (SeedTicket.to_json); output: one JSON line per ticket
# {"key":..,"id":..} on STDOUT, warnings on STDERR, a summary line at the end.
#
# History dates: each record and event carries its own time. RT takes "now" from Perl's
# time()/gmtime(); we override both for RT's packages only, so every row RT writes for an
# event (transaction, attachment, custom-field value, Started/Resolved/LastUpdated) carries
# the event's time and the desk holds a consistent past (overdue tickets, old closures).
use strict;
use warnings;

our $FAKE_NOW;    # epoch seconds of the event being loaded, or undef for the real clock

BEGIN {
    # Must be installed before RT is compiled: CORE::GLOBAL overrides bind at compile time.
    no warnings 'redefine';
    *CORE::GLOBAL::time = sub () {
        my $pkg = caller;
        return (defined $FAKE_NOW && $pkg =~ /^RT(?:::|$)/) ? $FAKE_NOW : CORE::time();
    };
    *CORE::GLOBAL::gmtime = sub (;$) {
        my $pkg = caller;
        my $t = @_ ? $_[0]
              : (defined $FAKE_NOW && $pkg =~ /^RT(?:::|$)/) ? $FAKE_NOW : CORE::time();
        return CORE::gmtime($t);
    };
    *CORE::GLOBAL::localtime = sub (;$) {
        my $pkg = caller;
        my $t = @_ ? $_[0]
              : (defined $FAKE_NOW && $pkg =~ /^RT(?:::|$)/) ? $FAKE_NOW : CORE::time();
        return CORE::localtime($t);
    };
}

use lib '/usr/share/request-tracker5/lib';
use RT;
use JSON::PP;
use MIME::Entity;
use Encode qw(encode);
use Time::Local qw(timegm);

RT::LoadConfig();
RT::Init();

my $BATCH = $ENV{SEED_BATCH} || 50;

{
    # Seeded history is the past: it must not mail anyone, and notification scrips are
    # most of the cost of a transaction.
    no warnings 'redefine';
    my $orig = \&RT::Transaction::Create;
    *RT::Transaction::Create = sub {
        my ($self, %args) = @_;
        $args{ActivateScrips} = 0;
        return $orig->($self, %args);
    };
}

{
    # Rights: the records say who did what and the loader writes it as them; whether they
    # may is RT's question for live users, not for a history being loaded. RT checks a
    # right a hundred times a ticket, and every ticket's new role groups empty its rights
    # cache (about a tenth of the loader's time).
    no warnings 'redefine';
    *RT::Principal::HasRight = sub { return 1 };
}

my $dbh = $RT::Handle->dbh;
{
    # RT::Record::AddCustomFieldDefaultValues walks every custom field of the queue after
    # each create to apply default values (a third of a create's cost). The desk defines
    # none, so skip it -- but only while that stays true.
    my ($defaults) = $dbh->selectrow_array(
        "SELECT count(*) FROM Attributes WHERE Name = 'CustomFieldDefaultValues'");
    unless ($defaults) {
        no warnings 'redefine';
        *RT::Record::AddCustomFieldDefaultValues = sub { return 1 };
    }
}
# Durability of a seed run does not matter (a failed run is re-provisioned); speed does.
$dbh->do('PRAGMA synchronous = OFF');
$dbh->do('PRAGMA temp_store = MEMORY');
$dbh->do('PRAGMA cache_size = -65536');

sub epoch {
    my $s = shift;
    my ($Y, $m, $d, $H, $M, $S) = $s =~ /^(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)/
        or die "bad time '$s'\n";
    return timegm($S, $M, $H, $d, $m - 1, $Y);
}

my %users;
sub current_user {
    my $name = shift || 'root';
    return $users{$name} //= do {
        my $cu = RT::CurrentUser->new;
        $cu->Load($name);
        die "no RT user '$name'\n" unless $cu->id;
        $cu;
    };
}

my %cf_id;    # "queue\0name" -> custom field id
sub cf_id {
    my ($queue, $name) = @_;
    return $cf_id{"$queue\0$name"} //= do {
        my $q = RT::Queue->new(RT->SystemUser);
        $q->Load($queue) or die "no queue '$queue'\n";
        my $cfs = $q->TicketCustomFields;
        $cfs->Limit(FIELD => 'Name', VALUE => $name, CASESENSITIVE => 0);
        my $cf = $cfs->First or die "custom field '$name' not applied to queue '$queue'\n";
        $cf->id;
    };
}
my %multi;
sub cf_multiple {
    my $id = shift;
    return $multi{$id} //= do {
        my $cf = RT::CustomField->new(RT->SystemUser);
        $cf->Load($id);
        $cf->MaxValues == 0 ? 1 : 0;
    };
}

sub mime {
    my $text = shift;
    return MIME::Entity->build(
        Type => 'text/plain', Charset => 'UTF-8', Encoding => 'base64',
        Data => [ encode('UTF-8', $text) ],
    );
}

my $json = JSON::PP->new->utf8->canonical;
$| = 1;  # one line per ticket as it is loaded: the caller shows progress from them
my (%id_of, $count, $errors, $first_id);
my $started = CORE::time();
$RT::Handle->BeginTransaction;

sub fail {
    my ($rec, $what) = @_;
    $errors++;
    print STDERR "seed: $rec->{key}: $what\n";
}

while (my $line = <STDIN>) {
    next unless $line =~ /\S/;
    my $rec = $json->decode($line);
    local $FAKE_NOW = epoch($rec->{created});
    my $queue = $rec->{queue};

    my %create = (
        Queue           => $queue,
        Subject         => $rec->{subject},
        Status          => $rec->{status},
        Priority        => $rec->{priority},
        InitialPriority => $rec->{priority},
        MIMEObj         => mime($rec->{description}),
        # Not LazyRoleGroups: it saves ~3 ms a ticket but rt-validator then reports every
        # ticket's missing role groups; the desk must pass RT's own consistency check.
    );
    $create{Requestor} = [ $rec->{requestor} ] if $rec->{requestor};
    for my $name (sort keys %{ $rec->{cf} || {} }) {
        $create{ 'CustomField-' . cf_id($queue, $name) } = $rec->{cf}{$name};
    }
    if (my $master = $rec->{member_of}) {
        $create{MemberOf} = $id_of{$master} or die "master $master not loaded before $rec->{key}\n";
    }
    if (@{ $rec->{refers_to} || [] }) {
        $create{RefersTo} = [ map { $id_of{$_} or die "unknown ref $_\n" } @{ $rec->{refers_to} } ];
    }

    my $ticket = RT::Ticket->new(current_user($rec->{creator}));
    my ($id, undef, $msg) = $ticket->Create(%create);
    die "seed: $rec->{key}: create failed: $msg\n" unless $id;
    $id_of{ $rec->{key} } = $id;
    $first_id //= $id;

    for my $ev (@{ $rec->{events} || [] }) {
        $FAKE_NOW = epoch($ev->{at});
        my $t = RT::Ticket->new(current_user($ev->{actor}));
        $t->Load($id);
        if (my $owner = $ev->{owner}) {
            if ($t->OwnerObj->Name ne $owner) {
                my ($ok, $m) = $t->SetOwner($owner);
                ($ok, $m) = $t->SetOwner($owner, 'Force') unless $ok;
                fail($rec, "owner $owner: $m") unless $ok;
            }
        }
        for my $name (sort keys %{ $ev->{cf} || {} }) {
            my $cfid = cf_id($queue, $name);
            my $value = $ev->{cf}{$name};
            for my $v (ref $value ? @$value : ($value)) {
                my ($ok, $m) = $t->AddCustomFieldValue(Field => $cfid, Value => $v);
                fail($rec, "field $name=$v: $m") unless $ok;
            }
        }
        if (defined $ev->{comment}) {
            my ($ok, $m) = $t->Comment(MIMEObj => mime($ev->{comment}));
            fail($rec, "comment: $m") unless $ok;
        }
        if (my $status = $ev->{status}) {
            if ($t->Status ne $status) {
                my ($ok, $m) = $t->SetStatus($status);
                fail($rec, "status $status: $m") unless $ok;
            }
        }
    }

    print $json->encode({ key => $rec->{key}, id => $id + 0 }), "\n";
    $count++;
    if ($count % $BATCH == 0) {
        # Commit in batches: fast, yet a running server's writers wait at most one batch.
        $RT::Handle->Commit;
        $RT::Handle->BeginTransaction;
    }
}
$RT::Handle->Commit;
# RT stamps a ticket's LastUpdated after every transaction it writes on it, so LastUpdated is
# never older than its newest transaction ("updated since" searches rely on that). Loading
# history ticket by ticket breaks it where one ticket's event lands on another at an earlier
# time (a duplicate's link, recorded on its master too): restore it.
# Only the tickets this run loaded: the others' dates are their own business.
$dbh->do(q{
    UPDATE Tickets SET LastUpdated = (
        SELECT MAX(Created) FROM Transactions
         WHERE ObjectType = 'RT::Ticket' AND ObjectId = Tickets.id)
     WHERE id >= ? AND LastUpdated < (
        SELECT MAX(Created) FROM Transactions
         WHERE ObjectType = 'RT::Ticket' AND ObjectId = Tickets.id)
}, undef, $first_id // 0) if defined $first_id;
$dbh->commit unless $dbh->{AutoCommit};
my $secs = CORE::time() - $started;
print STDERR "seed: loaded " . ($count || 0) . " tickets in ${secs}s, " . ($errors || 0) . " errors\n";
exit($errors ? 2 : 0);
