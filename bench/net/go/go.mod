module netpeer

go 1.19
