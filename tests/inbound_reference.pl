#!/usr/bin/perl
# sisimai's reading of each message named on the command line, for
# tests/inbound_reference.rs: a JSON object from the path to
# {"reason": ..., "recipient": ...} (its first reading), or null where
# sisimai finds nothing. Each file is read as one message from memory, so a
# file without an mbox "From " line is not mistaken for an empty mailbox.
use strict;
use warnings;
use Sisimai;
use JSON::PP;

my %out;
for my $path (@ARGV) {
    open(my $fh, '<:raw', $path) or die "$path: $!\n";
    my $text = do { local $/; <$fh> };
    close $fh;
    # Delivered and vacation readings are asked for: a DSN saying
    # "delivered" or an auto-reply is then compared too, not just dropped.
    my $data = length($text) ? eval { Sisimai->make(\$text, 'delivered' => 1, 'vacation' => 1) } : undef;
    if ($@) { warn "$path: sisimai died: $@"; $data = undef }
    if (ref $data eq 'ARRAY' && @$data) {
        my $first = $data->[0];
        $out{$path} = {
            'reason'    => $first->reason . '',
            'recipient' => ($first->recipient ? $first->recipient->address : ''),
        };
    } else {
        $out{$path} = undef;
    }
}
print JSON::PP->new->canonical->encode(\%out);
