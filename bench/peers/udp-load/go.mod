module udpload

go 1.19
