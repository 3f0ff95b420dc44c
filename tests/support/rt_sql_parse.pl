#!/usr/bin/perl
# Runs RT's own TicketSQL parser (RT::SQL::Parse) on JSON-encoded query lines from stdin and
# prints the parsed conditions as JSON lines: the oracle of tests/support/rt_sql.py.
# RT::SQL needs only a logger and Mason's loc() from the rest of RT; both are stubbed.
use strict; use warnings;
use lib ($ENV{RT_LIB} // '/usr/share/request-tracker5/lib');
package RT::Base; sub _ImportOverlays {}
package RT; sub Logger { return bless {}, 'RTParseQuiet' }
package RTParseQuiet; sub AUTOLOAD { return }
package HTML::Mason::Commands; sub loc { my $msg = shift; my @a = @_; $msg =~ s/\[_(\d+)\]/$a[$1-1]/g; $msg =~ s/\[\w+,_\d+,[^\]]*\]/?/g; return $msg }
package main;
$INC{'RT/Base.pm'} = 1;
require RT::SQL;
use JSON::PP;
my $json = JSON::PP->new->utf8->canonical;
$| = 1;
while (my $line = <STDIN>) {
    my $query = $json->decode($line);
    my @conds;
    my $err;
    RT::SQL::Parse($query, {
        OpenParen => sub {}, CloseParen => sub {}, EntryAggregator => sub {},
        Condition => sub { push @conds, { key => $_[0], op => $_[1], value => $_[2], quoted => $_[3] ? 1 : 0 } },
        Error => sub { $err = $_[0] },
    });
    print $json->encode({ conditions => \@conds, error => $err }), "\n";
}
