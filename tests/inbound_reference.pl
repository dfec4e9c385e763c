#!/usr/bin/perl
# Reads each file named on the command line with sisimai (Debian's
# libsisimai-perl) and prints one JSON object: file => what sisimai found
# (its first reading: reason, recipient, deliverystatus), or null where
# sisimai finds no bounce, complaint or auto-reply. Used by
# tests/inbound_reference.rs.
use strict;
use warnings;
use Sisimai;
use JSON::PP;

my $out = {};
for my $file (@ARGV) {
    my $found = eval {
        # delivered and vacation: sisimai skips them unless asked.
        Sisimai->make($file, 'delivered' => 1, 'vacation' => 1);
    };
    if ($@ || !$found || !@$found) {
        $out->{$file} = undef;
        next;
    }
    my $first = $found->[0];
    $out->{$file} = {
        'reason'    => $first->reason // '',
        'recipient' => $first->recipient ? $first->recipient->address : '',
        'status'    => $first->deliverystatus // '',
    };
}
print JSON::PP->new->canonical->encode($out), "\n";
