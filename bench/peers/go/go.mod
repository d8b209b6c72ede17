module heddlepeers

go 1.19
