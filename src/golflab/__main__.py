from golflab.cli import main

main()
