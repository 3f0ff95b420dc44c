my ($changes) = $incident_ops_changes->();
return @$changes ? 1 : 0;
