#!/usr/bin/perl
# A Perl CGI script that sleeps: for concurrency and timeout tests.
use strict;
use warnings;
use Time::HiRes qw(sleep time);
my ($ms) = ($ENV{QUERY_STRING} // '') =~ /ms=(\d+)/;
$ms //= 0;
my $start = time;
sleep($ms / 1000);
printf "Content-Type: text/plain\r\nX-Runner-Pid: %d\r\n\r\nstart=%.6f end=%.6f\n", getppid(), $start, time;
