# Action: PUBLISH {"ticket", "changes", "at", "transaction"} to a Redis channel.
# Plain RESP over IO::Socket::INET (Perl core, no CPAN module). Settings from RT's config:
#   Set($IncidentOpsEventsRedis, 'host:port');     # unset or empty: publish nothing
#   Set($IncidentOpsEventsChannel, 'incident-ops.desk-events');
#   Set($IncidentOpsEventsPassword, '...');        # optional (Redis AUTH)
# A failure to publish never fails the update (it is committed already; this stage runs
# after it): it is logged, and the poll of urgent_incidents finds the ticket anyway.
use IO::Socket::INET;
use IO::Select;
use JSON::PP;
my $target = RT->Config->Get('IncidentOpsEventsRedis') || '';
return 1 unless $target;
my $ok = eval {
    my ($host, $port) = $target =~ /^\[?([^\]]+?)\]?(?::(\d+))?$/ or die "bad host:port '$target'\n";
    my $channel = RT->Config->Get('IncidentOpsEventsChannel') || 'incident-ops.desk-events';
    my ($changes, $txn) = $incident_ops_changes->();
    return 1 unless $txn;
    my $at = $txn->Created;  # UTC in the database: "YYYY-MM-DD HH:MM:SS"
    $at =~ s/ /T/;
    my $message = JSON::PP->new->canonical->encode({
        ticket => '' . $self->TicketObj->id, changes => $changes,
        at => $at . 'Z', transaction => '' . $txn->id,
    });
    my $resp = sub { join '', '*' . scalar(@_) . "\r\n", map { utf8::encode(my $bytes = $_); "\$" . length($bytes) . "\r\n$bytes\r\n" } @_ };
    my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port || 6379,
                                     Proto => 'tcp', Timeout => 1)
        or die "cannot connect to $host:" . ($port || 6379) . ": $@\n";
    my $password = RT->Config->Get('IncidentOpsEventsPassword');
    my @commands = ($password ? ($resp->('AUTH', $password)) : (), $resp->('PUBLISH', $channel, $message));
    $sock->print(join '', @commands) or die "cannot write: $!\n";
    my $select = IO::Select->new($sock);
    for (@commands) {
        $select->can_read(1) or die "no answer from Redis in 1 s\n";
        defined(my $line = $sock->getline) or die "Redis closed the connection\n";
        die "Redis: $line" if $line =~ /^-/;
    }
    close $sock;
    1;
};
RT->Logger->warning("incident-ops desk event for ticket " . $self->TicketObj->id
                    . " not published: " . ($@ || 'unknown error')) unless $ok;
return 1;
