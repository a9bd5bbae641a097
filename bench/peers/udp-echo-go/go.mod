module udpechogo

go 1.19
