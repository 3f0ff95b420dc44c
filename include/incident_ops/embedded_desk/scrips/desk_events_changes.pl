# Desk events (issue 28): what in this batch of changes matters to 100.5 (urgent incidents)?
# A ticket was created, its priority changed, or "First Line Cannot Handle" (100.5.2) was
# set. The scrip runs at the TransactionBatch stage: it sees every change of one update at
# once, after they are committed.
my $incident_ops_changes = sub {
    my (@changes, %seen, $last);
    for my $txn (@{ $self->TicketObj->TransactionBatch || [] }) {
        my $type = $txn->Type || '';
        my $what;
        if ($type eq 'Create') {
            $what = 'created';
        } elsif ($type eq 'Set' && ($txn->Field || '') eq 'Priority') {
            $what = 'priority';
        } elsif ($type eq 'CustomField') {
            my $cf = RT::CustomField->new(RT->SystemUser);
            $cf->Load($txn->Field);
            $what = 'first_line_cannot_handle'
                if $cf->id && $cf->Name eq 'First Line Cannot Handle';
        }
        next unless $what;
        $last = $txn;
        push @changes, $what unless $seen{$what}++;
    }
    return (\@changes, $last);
};
