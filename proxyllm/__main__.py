from proxyllm.cli import main

main()
